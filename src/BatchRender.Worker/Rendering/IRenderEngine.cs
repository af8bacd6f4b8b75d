using BatchRender.Core.Messages;

namespace BatchRender.Worker.Rendering;

// The seam between the worker loop and whatever turns task messages into pixels. The production implementation is
// PipelineRenderEngine (the TorchSharp Hunyuan-DiT pipeline); the worker tests use a deterministic test renderer.

/// <summary>
/// Renders a group of compatible tasks (same <see cref="RenderGroupKey"/>) in one call. One outcome per task, in
/// order: a task that can never render (its model is unknown, its inpaint inputs are missing) fails alone with a
/// <see cref="PermanentRenderFailure"/>; anything thrown fails the whole group transiently (the tasks are redelivered).
/// </summary>
public interface IRenderEngine
{
    /// <summary>Loads <paramref name="model"/> now (at start-up, for readiness) so the first task does not wait for it.</summary>
    Task PreloadAsync(string model, string quantization, CancellationToken cancellationToken = default);

    Task<IReadOnlyList<TaskRenderOutcome>> RenderAsync(IReadOnlyList<RenderTaskMessage> group, CancellationToken cancellationToken = default);
}

/// <summary>What tasks must share to be rendered in one model pass.</summary>
public sealed record RenderGroupKey(string Model, string Kind, int Width, int Height, int Steps, string Sampler, string Quantization)
{
    public static RenderGroupKey For(RenderTaskMessage task) => new(task.Model, task.Kind, task.Params.Width, task.Params.Height,
        task.Params.Steps, task.Params.Sampler, task.Params.Quantization);
}

/// <summary>One task's result: exactly one of <see cref="Output"/> and <see cref="Failure"/>.</summary>
public sealed record TaskRenderOutcome(RenderedOutput? Output, PermanentRenderFailure? Failure)
{
    public static TaskRenderOutcome Rendered(RenderedOutput output) => new(output, null);
    public static TaskRenderOutcome Failed(string reason, string description) => new(null, new PermanentRenderFailure(reason, description));
}

/// <summary>A failure no retry can fix: the task is dead-lettered with <paramref name="Reason"/> (a DeadLetterReasons name).</summary>
public sealed record PermanentRenderFailure(string Reason, string Description);

/// <summary>What one task produced.</summary>
public sealed record RenderedOutput
{
    /// <summary>The image (images and inpainting); for video, the first frame.</summary>
    public required byte[] Png { get; init; }
    /// <summary>Video only: one PNG per frame.</summary>
    public IReadOnlyList<byte[]>? FramePngs { get; init; }
    /// <summary>Video only: the animated GIF preview.</summary>
    public byte[]? PreviewGif { get; init; }
    /// <summary>Identifies the weights that rendered it (recorded in the sidecar).</summary>
    public required string ModelHash { get; init; }
    /// <summary>Milliseconds by stage (encode, denoise, decode, ...) for this task's share of the group.</summary>
    public required IReadOnlyDictionary<string, double> TimingsMs { get; init; }
}
