using BatchRender.Model.Pipelines;
using SixLabors.ImageSharp;
using SixLabors.ImageSharp.PixelFormats;

namespace BatchRender.Training.Evaluation;

/// <summary>How evaluation prompts are rendered (the manifest defaults a person would use with the demo model).</summary>
public sealed record EvalRenderSettings
{
    public int Steps { get; init; } = 20;
    public double GuidanceScale { get; init; } = 5.0;
    public SamplerKind Sampler { get; init; } = SamplerKind.Ddim;
    public int BatchSize { get; init; } = 8;
    public int Fps { get; init; } = 8;
}

/// <summary>Plugs a render pipeline into the evaluation: prompts become <see cref="RenderRequest"/>s (batched by kind,
/// since a batch shares its size, steps and sampler), PNG results become images.</summary>
public static class PipelineEvalRenderer
{
    public static EvalRenderer Create(IRenderPipeline pipeline, int imageSize, EvalRenderSettings settings) => (prompts, cancellationToken) =>
    {
        var results = new RenderedItem[prompts.Count];
        foreach (var group in prompts.Select((p, i) => (Prompt: p, Index: i)).GroupBy(x => x.Prompt.Kind))
            foreach (var chunk in group.Chunk(Math.Max(1, settings.BatchSize)))
            {
                cancellationToken.ThrowIfCancellationRequested();
                var requests = chunk.Select(x => ToRequest(x.Prompt, imageSize, settings)).ToList();
                var rendered = pipeline.Render(requests, null, cancellationToken);
                for (int k = 0; k < chunk.Length; k++)
                {
                    var r = rendered[k];
                    var frames = chunk[k].Prompt.Kind == EvalKind.Video
                        ? (r.FramePngs ?? throw new InvalidOperationException($"{chunk[k].Prompt.Id}: the pipeline returned no frames")).Select(Decode).ToList()
                        : [Decode(r.Png)];
                    results[chunk[k].Index] = new RenderedItem(frames);
                }
            }
        return results;
    };

    public static RenderRequest ToRequest(EvalPrompt prompt, int imageSize, EvalRenderSettings settings) => new()
    {
        Prompt = prompt.Prompt,
        NegativePrompt = prompt.NegativePrompt,
        Seed = prompt.Seed,
        Width = imageSize,
        Height = imageSize,
        Steps = settings.Steps,
        GuidanceScale = settings.GuidanceScale,
        Sampler = settings.Sampler,
        Video = prompt.Kind == EvalKind.Video ? new VideoRequest(prompt.Frames, settings.Fps, 1.0) : null,
        Inpaint = prompt.Inpaint is { } i ? new InpaintRequest(i.ImagePng, i.MaskPng, i.Strength) : null,
    };

    static Image<Rgb24> Decode(byte[] png) => Image.Load<Rgb24>(png);
}
