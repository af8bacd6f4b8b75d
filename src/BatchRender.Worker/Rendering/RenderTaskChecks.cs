using BatchRender.Core.Messages;

namespace BatchRender.Worker.Rendering;

/// <summary>
/// The worker's own check of a task's parameters before it renders: ingest validated the manifest, but a message can
/// come from an older or foreign sender, and a bad size or sampler must dead-letter the task, not crash the model.
/// </summary>
public static class RenderTaskChecks
{
    /// <summary>Null when the task can be rendered; else what is wrong with it.</summary>
    public static string? Problem(RenderTaskMessage task)
    {
        var p = task.Params;
        if (string.IsNullOrWhiteSpace(task.Model)) return "model is empty";
        if (string.IsNullOrWhiteSpace(p.Prompt)) return "params.prompt is empty";
        if (!IsSize(p.Width)) return $"params.width = {p.Width} must be a multiple of 16 between 64 and 2048";
        if (!IsSize(p.Height)) return $"params.height = {p.Height} must be a multiple of 16 between 64 and 2048";
        if (p.Steps is < 1 or > 1000) return $"params.steps = {p.Steps} must be from 1 to 1000";
        if (!(p.GuidanceScale is >= 0 and <= 30)) return $"params.guidanceScale = {p.GuidanceScale} must be from 0 to 30";
        if (p.Seed < 0) return $"params.seed = {p.Seed} must not be negative";
        if (p.Sampler is not ("ddpm" or "ddim" or "dpmsolver++")) return $"params.sampler = '{p.Sampler}' must be ddpm, ddim or dpmsolver++";
        if (p.Quantization is not ("none" or "bf16" or "int8-dynamic"))
            return $"params.quantization = '{p.Quantization}' must be none, bf16 or int8-dynamic";
        return task.Kind switch
        {
            RenderTaskKinds.Image when p.Video is not null || p.Inpaint is not null => "an image task carries video or inpaint parameters",
            RenderTaskKinds.Image => null,
            RenderTaskKinds.Video when p.Video is null => "a video task has no params.video",
            RenderTaskKinds.Video when p.Inpaint is not null => "a video task carries inpaint parameters",
            RenderTaskKinds.Video when p.Video!.Frames < 2 => $"params.video.frames = {p.Video.Frames} must be at least 2",
            RenderTaskKinds.Video when p.Video!.Fps is < 1 or > 60 => $"params.video.fps = {p.Video.Fps} must be from 1 to 60",
            RenderTaskKinds.Video => null,
            RenderTaskKinds.Inpaint when p.Inpaint is null => "an inpaint task has no params.inpaint",
            RenderTaskKinds.Inpaint when p.Video is not null => "an inpaint task carries video parameters",
            RenderTaskKinds.Inpaint when !(p.Inpaint!.Strength is > 0 and <= 1) => $"params.inpaint.strength = {p.Inpaint.Strength} must be in (0, 1]",
            RenderTaskKinds.Inpaint when string.IsNullOrEmpty(p.Inpaint!.ImageBlob) || string.IsNullOrEmpty(p.Inpaint.MaskBlob)
                => "params.inpaint names no image or mask blob",
            RenderTaskKinds.Inpaint => null,
            _ => $"kind = '{task.Kind}' must be image, video or inpaint",
        };
    }

    private static bool IsSize(int pixels) => pixels is >= 64 and <= 2048 && pixels % 16 == 0;
}
