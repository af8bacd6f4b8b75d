using BatchRender.Training.Dataset;
using SixLabors.ImageSharp;
using SixLabors.ImageSharp.PixelFormats;

namespace BatchRender.Training.Evaluation;

public enum EvalKind { Image, Video, Inpaint }

/// <summary>An inpainting item: the input image (PNG), the mask (PNG, white = repaint), the object the masked region
/// must come to contain, and the region itself.</summary>
public sealed record InpaintInput(byte[] ImagePng, byte[] MaskPng, double Strength, SceneObject Target, Rectangle Region);

/// <summary>One evaluation prompt: the text to render and the scene it must show. For video, <see cref="Frames"/>
/// frames at phases 0 .. 1.</summary>
public sealed record EvalPrompt(
    string Id, EvalKind Kind, Language Language, string Prompt, string NegativePrompt, SceneSpec Scene, long Seed,
    int Frames = 1, InpaintInput? Inpaint = null);

public sealed record EvalSetOptions
{
    public int Seed { get; init; } = 7;
    public int ImageSize { get; init; } = 128;
    /// <summary>Scenes for text-to-image; each is asked in English and in Chinese with the same seed.</summary>
    public int ImageScenes { get; init; } = 60;
    public double TwoObjectShare { get; init; } = 0.3;
    /// <summary>Clips; each is asked in both languages.</summary>
    public int VideoClips { get; init; } = 6;
    public int FramesPerClip { get; init; } = 8;
    /// <summary>Inpainting items; each is asked in both languages.</summary>
    public int InpaintItems { get; init; } = 4;
}

/// <summary>The held-out evaluation prompts: every image scene contains a colour x shape x cell triple, and every clip a
/// colour x shape x motion triple, that the training stream never shows. Deterministic from the split and the seed.
/// Negative prompts are the generic "blurry, low quality" / "模糊, 低质量" (what the training taught them to mean).</summary>
public sealed class EvalSet
{
    EvalSet(IReadOnlyList<EvalPrompt> prompts, int imageSize) { Prompts = prompts; ImageSize = imageSize; }

    public IReadOnlyList<EvalPrompt> Prompts { get; }
    public int ImageSize { get; }

    public static EvalSet Create(HeldOutSplit split, EvalSetOptions options)
    {
        var random = new Random(options.Seed);
        var prompts = new List<EvalPrompt>();
        var stills = split.HeldOutStills.OrderBy(t => (t.Colour, t.Shape, t.Cell.Index)).ToArray();
        var clips = split.HeldOutClips.OrderBy(t => (t.Colour, t.Shape, t.Motion)).ToArray();

        for (int i = 0; i < options.ImageScenes; i++)
        {
            var t = stills[i % stills.Length];
            var held = new SceneObject(t.Shape, t.Colour, t.Cell, RandomSize(random));
            var objects = new List<SceneObject> { held };
            if (random.NextDouble() < options.TwoObjectShare)
                objects.Add(OtherObject(random, objects));
            var scene = new SceneSpec(BackgroundFor(random, objects), objects, RandomStyle(random)).Validate();
            AddBothLanguages(prompts, $"image-{i:D3}", EvalKind.Image, scene, random);
        }

        for (int i = 0; i < options.VideoClips; i++)
        {
            var t = clips[i % clips.Length];
            var size = t.Motion is Motion.Grow or Motion.Bloom ? ObjectSize.Large : RandomSize(random);
            var objects = new List<SceneObject> { new(t.Shape, t.Colour, GridCell.Centre, size) };
            var scene = new SceneSpec(BackgroundFor(random, objects), objects, RandomStyle(random), t.Motion).Validate();
            AddBothLanguages(prompts, $"video-{i:D3}", EvalKind.Video, scene, random, options.FramesPerClip);
        }

        for (int i = 0; i < options.InpaintItems; i++)
        {
            var t = stills[(i * 7 + 3) % stills.Length];
            var target = new SceneObject(t.Shape, t.Colour, t.Cell, ObjectSize.Large);
            var existing = OtherObject(random, [target]);
            var objects = new List<SceneObject> { existing, target }; // the existing object first: its placement does not change
            var scene = new SceneSpec(BackgroundFor(random, objects), objects, RandomStyle(random)).Validate();
            long seed = random.Next();
            var before = scene with { Objects = [existing] };
            using var input = SceneRenderer.Render(before, options.ImageSize, (int)seed);
            var region = CellRegion(target.Cell, options.ImageSize);
            using var mask = Mask(region, options.ImageSize);
            var inpaint = new InpaintInput(Png(input), Png(mask), 1.0, target, region);
            AddBothLanguages(prompts, $"inpaint-{i:D3}", EvalKind.Inpaint, scene, random, 1, inpaint, seed);
        }
        return new EvalSet(prompts, options.ImageSize);
    }

    /// <summary>What a perfect model would produce: the dataset's own rendering of the prompt's scene (for inpainting,
    /// the input outside the mask and the full scene inside). The analyser is checked on these first.</summary>
    public IReadOnlyList<Image<Rgb24>> RenderGroundTruth(EvalPrompt prompt)
    {
        int seed = (int)prompt.Seed;
        if (prompt.Kind == EvalKind.Video)
            return Enumerable.Range(0, prompt.Frames)
                .Select(f => SceneRenderer.Render(prompt.Scene, ImageSize, seed, prompt.Frames == 1 ? 1f : f / (prompt.Frames - 1f))).ToList();
        var image = SceneRenderer.Render(prompt.Scene, ImageSize, seed);
        if (prompt.Inpaint is { } inpaint)
        {
            using var input = Image.Load<Rgb24>(inpaint.ImagePng);
            using var mask = Image.Load<L8>(inpaint.MaskPng);
            for (int y = 0; y < ImageSize; y++)
                for (int x = 0; x < ImageSize; x++)
                    if (mask[x, y].PackedValue < 128) image[x, y] = input[x, y];
        }
        return [image];
    }

    /// <summary>The pixels of a grid cell, with a small margin for jitter and soft edges.</summary>
    public static Rectangle CellRegion(GridCell cell, int size)
    {
        int margin = Math.Max(2, size / 32);
        int x0 = Math.Max(0, cell.Column * size / 3 - margin), y0 = Math.Max(0, cell.Row * size / 3 - margin);
        int x1 = Math.Min(size, (cell.Column + 1) * size / 3 + margin), y1 = Math.Min(size, (cell.Row + 1) * size / 3 + margin);
        return new Rectangle(x0, y0, x1 - x0, y1 - y0);
    }

    static void AddBothLanguages(List<EvalPrompt> prompts, string id, EvalKind kind, SceneSpec scene, Random random,
        int frames = 1, InpaintInput? inpaint = null, long? seed = null)
    {
        long s = seed ?? random.Next();
        foreach (var language in Enum.GetValues<Language>())
            prompts.Add(new EvalPrompt($"{id}-{language.Code()}", kind, language,
                CaptionGenerator.Describe(scene, language, random, CaptionOptions.Complete),
                CaptionWords.For(language).Degraded[0], scene, s, frames, inpaint));
    }

    static SceneObject OtherObject(Random random, IReadOnlyList<SceneObject> taken)
    {
        var cells = GridCell.All.Where(c => taken.All(o => o.Cell != c)).ToArray();
        var colours = Palette.Colours.Where(c => taken.All(o => o.Colour != c)).ToArray();
        return new SceneObject(Palette.Shapes[random.Next(Palette.Shapes.Count)], colours[random.Next(colours.Length)],
            cells[random.Next(cells.Length)], RandomSize(random));
    }

    static ObjectColour BackgroundFor(Random random, IReadOnlyList<SceneObject> objects)
    {
        var free = Palette.Colours.Where(c => objects.All(o => o.Colour != c)).ToArray();
        return free[random.Next(free.Length)];
    }

    static ObjectSize RandomSize(Random random) => random.Next(2) == 0 ? ObjectSize.Small : ObjectSize.Large;
    static RenderStyle RandomStyle(Random random) => random.Next(2) == 0 ? RenderStyle.Flat : RenderStyle.InkWash;

    static Image<L8> Mask(Rectangle region, int size)
    {
        var mask = new Image<L8>(size, size);
        for (int y = region.Top; y < region.Bottom; y++)
            for (int x = region.Left; x < region.Right; x++)
                mask[x, y] = new L8(255);
        return mask;
    }

    static byte[] Png<TPixel>(Image<TPixel> image) where TPixel : unmanaged, IPixel<TPixel>
    {
        using var stream = new MemoryStream();
        image.SaveAsPng(stream);
        return stream.ToArray();
    }
}
