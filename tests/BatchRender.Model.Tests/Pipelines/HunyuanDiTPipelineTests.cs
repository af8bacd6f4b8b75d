using BatchRender.Model.Pipelines;
using SixLabors.ImageSharp;
using SixLabors.ImageSharp.PixelFormats;

namespace BatchRender.Model.Tests.Pipelines;

/// <summary>The render pipeline end to end on a tiny random model of the real architecture, loaded from disk.</summary>
public sealed class HunyuanDiTPipelineTests : IClassFixture<HunyuanDiTPipelineTests.Model>
{
    public sealed class Model : IDisposable
    {
        private readonly TempDirectory _dir = TestDevice.TempDir();
        public string Directory { get; }
        public string FramePhaseDirectory { get; }
        public HunyuanDiTPipeline Pipeline { get; }

        public Model()
        {
            Directory = TinyModelDirectory.Create(Path.Combine(_dir.Path, "plain"));
            FramePhaseDirectory = TinyModelDirectory.Create(Path.Combine(_dir.Path, "phase"), framePhase: true);
            Pipeline = HunyuanDiTPipeline.Load(new PipelineLoadOptions { ModelDirectory = Directory, Device = DeviceName });
        }

        public void Dispose() { Pipeline.Dispose(); _dir.Dispose(); }
    }

    private static string DeviceName => TestDevice.Current.type == TorchSharp.DeviceType.CUDA ? "cuda" : "cpu";
    private readonly Model _model;
    public HunyuanDiTPipelineTests(Model model) => _model = model;

    private static RenderRequest Request(string prompt, long seed, SamplerKind sampler = SamplerKind.Ddim) => new()
    {
        Prompt = prompt, NegativePrompt = "blurry, low quality", Seed = seed, Width = 80, Height = 64, Steps = 3,
        GuidanceScale = 4.0, Sampler = sampler,
    };

    private static Image<Rgb24> Decode(byte[] png) => Image.Load<Rgb24>(png);

    [Fact]
    public void Renders_a_bilingual_batch_into_pngs_of_the_requested_size()
    {
        var results = _model.Pipeline.Render([Request("a red star in the top left corner", 7), Request("蓝色背景左上角有一个大的红色五角星", 8)]);
        Assert.Equal(2, results.Count);
        foreach (var r in results)
        {
            using var image = Decode(r.Png);
            Assert.Equal((80, 64), (image.Width, image.Height));
            Assert.Null(r.FramePngs);
        }
        Assert.Equal(7, results[0].Seed);
        Assert.NotEqual(results[0].Png, results[1].Png);
    }

    [Theory]
    [InlineData(SamplerKind.Ddim)]
    [InlineData(SamplerKind.Ddpm)]
    [InlineData(SamplerKind.DpmSolverPlusPlus)]
    public void Same_seed_and_params_give_identical_pixels_and_a_batch_matches_rendering_alone(SamplerKind sampler)
    {
        var a = Request("a green circle", 11, sampler);
        var b = Request("一朵黄色的花", 12, sampler);
        var first = _model.Pipeline.Render([a]);
        var again = _model.Pipeline.Render([a]);
        Assert.Equal(first[0].Png, again[0].Png);

        // In a batch the item keeps its own noise, scheduler and generator. The GEMMs may block differently for another
        // batch size, so pixels may differ by rounding only (documented tolerance: 1 level of 255).
        var batched = _model.Pipeline.Render([b, a]);
        using var alone = Decode(first[0].Png);
        using var inBatch = Decode(batched[1].Png);
        Assert.True(MaxPixelDifference(alone, inBatch) <= 1, $"batched render differs by {MaxPixelDifference(alone, inBatch)} levels");
    }

    [Fact]
    public void Guidance_changes_the_image_and_the_negative_prompt_matters()
    {
        var baseRequest = Request("a blue square", 5);
        var guided = _model.Pipeline.Render([baseRequest])[0].Png;
        var unguided = _model.Pipeline.Render([baseRequest with { GuidanceScale = 1.0 }])[0].Png;
        var otherNegative = _model.Pipeline.Render([baseRequest with { NegativePrompt = "a red star" }])[0].Png;
        Assert.NotEqual(guided, unguided);
        Assert.NotEqual(guided, otherNegative);
    }

    [Fact]
    public void Inpainting_keeps_every_pixel_outside_the_mask()
    {
        int w = 80, h = 64;
        using var source = new Image<Rgb24>(w, h);
        for (int y = 0; y < h; y++) for (int x = 0; x < w; x++) source[x, y] = new Rgb24((byte)(x * 4), (byte)(y * 5), 120);
        using var mask = new Image<L8>(w, h);
        for (int y = 8; y < 32; y++) for (int x = 16; x < 40; x++) mask[x, y] = new L8(255);
        var request = Request("a yellow flower", 3) with { Inpaint = new InpaintRequest(Png(source), Png(mask), 0.8) };

        var result = _model.Pipeline.Render([request])[0];
        using var output = Decode(result.Png);
        int changedInside = 0;
        for (int y = 0; y < h; y++)
            for (int x = 0; x < w; x++)
            {
                bool repaint = x is >= 16 and < 40 && y is >= 8 and < 32;
                if (!repaint) Assert.Equal(source[x, y], output[x, y]);
                else if (!source[x, y].Equals(output[x, y])) changedInside++;
            }
        Assert.True(changedInside > 0, "the masked region was not repainted");
    }

    [Fact]
    public void A_video_gives_frames_and_an_animated_preview_and_phase_models_share_the_noise()
    {
        using var phasePipeline = HunyuanDiTPipeline.Load(new PipelineLoadOptions { ModelDirectory = _model.FramePhaseDirectory, Device = DeviceName });
        foreach (var pipeline in new[] { _model.Pipeline, phasePipeline })
        {
            var request = Request("a red circle moving from left to right", 9) with { Video = new VideoRequest(5, 8, 1.0) };
            var result = pipeline.Render([request])[0];
            Assert.Equal(5, result.FramePngs!.Count);
            Assert.Equal(result.Png, result.FramePngs[0]);
            using var gif = Image.Load<Rgb24>(result.PreviewGif!);
            Assert.Equal(5, gif.Frames.Count);
            Assert.Equal((80, 64), (gif.Width, gif.Height));
        }
    }

    [Fact]
    public void Reports_progress_per_step_and_honours_cancellation()
    {
        var steps = new List<RenderProgress>();
        _model.Pipeline.Render([Request("a star", 1)], new SyncProgress<RenderProgress>(steps.Add));
        Assert.Equal([1, 2, 3], steps.Select(s => s.Step));
        Assert.All(steps, s => Assert.Equal(3, s.TotalSteps));

        using var cts = new CancellationTokenSource();
        cts.Cancel();
        Assert.ThrowsAny<OperationCanceledException>(() => _model.Pipeline.Render([Request("a star", 1)], cancellationToken: cts.Token));
    }

    [Fact]
    public void Int8_dynamic_quantization_loads_reports_memory_and_stays_close_to_fp32()
    {
        using var quantized = HunyuanDiTPipeline.Load(new PipelineLoadOptions
        {
            ModelDirectory = _model.Directory, Device = DeviceName, Quantization = QuantizationMode.Int8Dynamic,
        });
        Assert.Equal(QuantizationMode.Int8Dynamic, quantized.Info.Quantization);
        Assert.InRange((double)quantized.Info.QuantizedLinearBytes / quantized.Info.Fp32LinearBytes, 0.01, 0.3 + 0.2 /* tiny layers: scales weigh more */);
        Assert.Equal(_model.Pipeline.Info.ModelHash, quantized.Info.ModelHash);
        using var image = Decode(quantized.Render([Request("a star", 1)])[0].Png);
        Assert.Equal(80, image.Width);
    }

    [Fact]
    public void Mismatched_batch_items_and_bad_sizes_are_refused_with_the_item_named()
    {
        var e = Assert.Throws<ArgumentException>(() => _model.Pipeline.Render([Request("a", 1), Request("b", 2) with { Steps = 4 }]));
        Assert.Contains("batch[1]", e.Message);
        e = Assert.Throws<ArgumentException>(() => _model.Pipeline.Render([Request("a", 1) with { Width = 70 }]));
        Assert.Contains("Width", e.Message);
    }

    [Fact]
    public void A_directory_missing_a_component_fails_naming_it()
    {
        using var dir = TestDevice.TempDir();
        var model = Path.Combine(dir.Path, "broken");
        System.IO.Directory.CreateDirectory(model);
        File.Copy(Path.Combine(_model.Directory, "model_index.json"), Path.Combine(model, "model_index.json"));
        var e = Assert.Throws<InvalidDataException>(() => ModelComponents.CheckLayout(model));
        Assert.Contains("transformer/", e.Message);
        Assert.Contains("text_encoder_2/", e.Message);
    }

    private static byte[] Png<TPixel>(Image<TPixel> image) where TPixel : unmanaged, IPixel<TPixel>
    {
        using var stream = new MemoryStream();
        image.SaveAsPng(stream);
        return stream.ToArray();
    }

    private static int MaxPixelDifference(Image<Rgb24> a, Image<Rgb24> b)
    {
        int max = 0;
        for (int y = 0; y < a.Height; y++)
            for (int x = 0; x < a.Width; x++)
            {
                var p = a[x, y]; var q = b[x, y];
                max = Math.Max(max, Math.Max(Math.Abs(p.R - q.R), Math.Max(Math.Abs(p.G - q.G), Math.Abs(p.B - q.B))));
            }
        return max;
    }

    private sealed class SyncProgress<T>(Action<T> report) : IProgress<T>
    {
        public void Report(T value) => report(value);
    }
}
