using SixLabors.ImageSharp;
using SixLabors.ImageSharp.PixelFormats;

namespace BatchRender.Training.Dataset;

/// <summary>What the training stream contains, and in which proportions.</summary>
public sealed record DemoDatasetOptions
{
    /// <summary>Seeds everything: the held-out split, every example's scene, caption and texture.</summary>
    public int Seed { get; init; } = 20261125;
    public int ImageSize { get; init; } = 128;
    /// <summary>Share of the attribute triples kept out of training for evaluation.</summary>
    public double HeldOutFraction { get; init; } = 0.1;
    public double VideoShare { get; init; } = 0.2;
    public double TwoObjectShare { get; init; } = 0.3;
    public double InkWashShare { get; init; } = 0.4;
    public double ChineseShare { get; init; } = 0.5;
    /// <summary>Share of examples whose caption is empty (the unconditional branch of classifier-free guidance).</summary>
    public double CaptionDropout { get; init; } = 0.1;
    /// <summary>Share of examples that are blurred and noisy and captioned as such ("blurry, low quality"), so a
    /// negative prompt in those words steers guidance away from degraded images.</summary>
    public double DegradedShare { get; init; } = 0.05;

    public DemoDatasetOptions Validate()
    {
        if (ImageSize < 32 || ImageSize % 16 != 0) throw new ArgumentOutOfRangeException(nameof(ImageSize), ImageSize, "must be a multiple of 16, at least 32");
        foreach (var (name, v) in new[] { (nameof(VideoShare), VideoShare), (nameof(TwoObjectShare), TwoObjectShare), (nameof(InkWashShare), InkWashShare),
                     (nameof(ChineseShare), ChineseShare), (nameof(CaptionDropout), CaptionDropout), (nameof(DegradedShare), DegradedShare) })
            if (v is < 0 or > 1) throw new ArgumentOutOfRangeException(name, v, "must be a fraction in [0, 1]");
        return this;
    }
}

/// <summary>One training example, without its pixels (render them with <see cref="DemoDataset.Render"/>).</summary>
/// <param name="Caption">The prompt to condition on; empty for the unconditional branch.</param>
/// <param name="FramePhase">Null for a still image; for a clip, the phase in [0, 1] of the frame this example shows.</param>
/// <param name="Degraded">The image is blurred and noisy, and the caption says so.</param>
/// <param name="RenderSeed">Seeds placement jitter and texture; all frames of one clip share it.</param>
public sealed record TrainingExample(long Index, SceneSpec Scene, Language Language, string Caption, float? FramePhase, bool Degraded, int RenderSeed);

/// <summary>The procedural bilingual dataset: an endless, seeded stream of captioned scenes and clip frames that
/// never contains a held-out attribute combination. Example i is a pure function of (options, i), so a resumed
/// training run continues the same stream.</summary>
public sealed class DemoDataset
{
    public DemoDataset(DemoDatasetOptions options)
    {
        Options = options.Validate();
        Split = new HeldOutSplit(options.Seed, options.HeldOutFraction);
    }

    public DemoDatasetOptions Options { get; }
    public HeldOutSplit Split { get; }

    public TrainingExample GetExample(long index)
    {
        var o = Options;
        var random = new Random(SeedMixer.Mix(o.Seed, index));
        var style = random.NextDouble() < o.InkWashShare ? RenderStyle.InkWash : RenderStyle.Flat;
        bool video = random.NextDouble() < o.VideoShare;
        int objects = random.NextDouble() < o.TwoObjectShare ? 2 : 1;
        SceneSpec scene;
        do scene = video ? SceneSampler.Clip(random, style) : SceneSampler.Still(random, objects, style);
        while (Split.IsHeldOut(scene));
        var language = random.NextDouble() < o.ChineseShare ? Language.Chinese : Language.English;
        float? phase = video ? (float)random.NextDouble() : null;
        bool degraded = random.NextDouble() < o.DegradedShare;
        string caption = CaptionGenerator.Describe(scene, language, random);
        if (degraded)
        {
            string words = CaptionGenerator.DegradedPrompt(language, random);
            caption = random.Next(2) == 0 ? words : caption + (language == Language.English ? ", " : "，") + words;
        }
        if (random.NextDouble() < o.CaptionDropout) caption = "";
        return new TrainingExample(index, scene, language, caption, phase, degraded, random.Next());
    }

    /// <summary>The example's image at <see cref="DemoDatasetOptions.ImageSize"/>.</summary>
    public Image<Rgb24> Render(TrainingExample example)
    {
        var image = SceneRenderer.Render(example.Scene, Options.ImageSize, example.RenderSeed, example.FramePhase ?? 1f);
        if (example.Degraded)
        {
            var random = new Random(SeedMixer.Mix(example.RenderSeed, example.Index, 1));
            ImageDegradation.Degrade(image, 1.2f + 1.3f * (float)random.NextDouble(), 6f + 10f * (float)random.NextDouble(), random.Next());
        }
        return image;
    }

    /// <summary>Renders the example straight into a channel-first float buffer in [-1, 1] (3 x size x size),
    /// the layout the VAE encoder takes.</summary>
    public void RenderChw(TrainingExample example, Span<float> destination)
    {
        using var image = Render(example);
        ImageBuffers.ToChw(image, destination);
    }
}

public static class ImageBuffers
{
    /// <summary>Writes an RGB image as channel-first floats in [-1, 1].</summary>
    public static void ToChw(Image<Rgb24> image, Span<float> destination)
    {
        int w = image.Width, h = image.Height, plane = w * h;
        if (destination.Length < 3 * plane) throw new ArgumentException($"destination holds {destination.Length} floats; {3 * plane} needed", nameof(destination));
        var pixels = new Rgb24[plane];
        image.CopyPixelDataTo(pixels);
        for (int i = 0; i < plane; i++)
        {
            destination[i] = pixels[i].R / 127.5f - 1f;
            destination[plane + i] = pixels[i].G / 127.5f - 1f;
            destination[2 * plane + i] = pixels[i].B / 127.5f - 1f;
        }
    }
}
