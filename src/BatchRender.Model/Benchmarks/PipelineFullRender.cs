using System.Diagnostics;
using BatchRender.Model.Pipelines;
using static TorchSharp.torch;

namespace BatchRender.Model.Benchmarks;

/// <summary>
/// The full-render part of <c>bench --model</c> for a real model directory: the same deterministic request (DDIM, a
/// fixed seed, CFG on) rendered by the production pipeline loaded in each quantization mode, timed after a one-step
/// warm-up render of that pipeline (the first render of a process pays for allocations: about twice as long), as the
/// median of <paramref name="repeats"/> renders; the PNG decoded back to [1, 3, H, W] in [0, 1] for the PSNR against fp32's.
/// </summary>
public sealed class PipelineFullRender(string modelDirectory, RenderRequest request, string device = "cpu", int threads = 0, int repeats = 3)
    : IFullRenderBenchmark
{
    /// <summary>The demo model's own kind of prompt at its native size: 128 px, 20 DDIM steps, guidance 5.</summary>
    public static RenderRequest DemoRequest { get; } = new()
    {
        Prompt = "a large red star in the top left corner on a blue background", NegativePrompt = "blurry, low quality",
        Seed = 20261201, Width = 128, Height = 128, Steps = 20, GuidanceScale = 5.0, Sampler = SamplerKind.Ddim,
    };

    public int Steps => request.Steps;

    public (Tensor Image, double Milliseconds) Render(QuantizationMode mode, CancellationToken cancellationToken)
    {
        using var pipeline = HunyuanDiTPipeline.Load(new PipelineLoadOptions
        {
            ModelDirectory = modelDirectory, Device = device, Quantization = mode, Threads = threads,
        });
        pipeline.Render([request], cancellationToken: cancellationToken);
        var times = new List<double>();
        RenderResult result = null!;
        for (int i = 0; i < Math.Max(1, repeats); i++)
        {
            var clock = Stopwatch.StartNew();
            result = pipeline.Render([request], cancellationToken: cancellationToken)[0];
            times.Add(clock.Elapsed.TotalMilliseconds);
        }
        var milliseconds = times.Order().ElementAt(times.Count / 2);
        var rgb = ImageCodec.DecodeRgb(result.Png, request.Width, request.Height, "the rendered PNG");
        var image = ImageCodec.ToTensor(rgb, request.Width, request.Height, CPU).add_(1).div_(2);
        return (image, milliseconds);
    }
}
