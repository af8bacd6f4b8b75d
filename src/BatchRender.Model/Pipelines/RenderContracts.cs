namespace BatchRender.Model.Pipelines;

// The public face of the renderer: what the worker, the CLI and the trainer's evaluation call.
// Implemented by HunyuanDiTPipeline (this folder). Nothing here depends on Azure.

/// <summary>Numeric mode of the transformer's Linear layers. Wire names: "none" | "bf16" | "int8-dynamic".</summary>
public enum QuantizationMode { None, BFloat16, Int8Dynamic }

/// <summary>Sampler. Wire names: "ddpm" | "ddim" | "dpmsolver++".</summary>
public enum SamplerKind { Ddpm, Ddim, DpmSolverPlusPlus }

public static class WireNames
{
    public static string ToWire(this QuantizationMode q) => q switch
    {
        QuantizationMode.None => "none", QuantizationMode.BFloat16 => "bf16", QuantizationMode.Int8Dynamic => "int8-dynamic",
        _ => throw new ArgumentOutOfRangeException(nameof(q)),
    };

    public static QuantizationMode ParseQuantization(string s) => s switch
    {
        "none" => QuantizationMode.None, "bf16" => QuantizationMode.BFloat16, "int8-dynamic" => QuantizationMode.Int8Dynamic,
        _ => throw new ArgumentException($"unknown quantization '{s}' (expected none, bf16 or int8-dynamic)", nameof(s)),
    };

    public static string ToWire(this SamplerKind s) => s switch
    {
        SamplerKind.Ddpm => "ddpm", SamplerKind.Ddim => "ddim", SamplerKind.DpmSolverPlusPlus => "dpmsolver++",
        _ => throw new ArgumentOutOfRangeException(nameof(s)),
    };

    public static SamplerKind ParseSampler(string s) => s switch
    {
        "ddpm" => SamplerKind.Ddpm, "ddim" => SamplerKind.Ddim, "dpmsolver++" => SamplerKind.DpmSolverPlusPlus,
        _ => throw new ArgumentException($"unknown sampler '{s}' (expected ddpm, ddim or dpmsolver++)", nameof(s)),
    };
}

/// <summary>How a pipeline is loaded: from a diffusers-layout directory.</summary>
public sealed record PipelineLoadOptions
{
    public required string ModelDirectory { get; init; }
    /// <summary>"auto" | "cpu" | "cuda" (auto = cuda when available).</summary>
    public string Device { get; init; } = "auto";
    public QuantizationMode Quantization { get; init; } = QuantizationMode.None;
    /// <summary>Also quantize the text encoders' Linear layers (int8-dynamic only).</summary>
    public bool QuantizeTextEncoders { get; init; }
    /// <summary>Intra-op threads; 0 = leave TorchSharp's default.</summary>
    public int Threads { get; init; }
}

/// <summary>One item to render. Items rendered together in one call must share Width, Height, Steps and Sampler.</summary>
public sealed record RenderRequest
{
    public required string Prompt { get; init; }
    public string NegativePrompt { get; init; } = "";
    public long Seed { get; init; }
    public int Width { get; init; } = 128;
    public int Height { get; init; } = 128;
    public int Steps { get; init; } = 20;
    public double GuidanceScale { get; init; } = 5.0;
    public double GuidanceRescale { get; init; }
    public SamplerKind Sampler { get; init; } = SamplerKind.Ddim;
    /// <summary>v1.0/v1.1 style condition (ignored by models without it).</summary>
    public int Style { get; init; }
    /// <summary>Present for video items (at most one of Video and Inpaint).</summary>
    public VideoRequest? Video { get; init; }
    /// <summary>Present for img2img/inpainting items.</summary>
    public InpaintRequest? Inpaint { get; init; }
}

public sealed record VideoRequest(int Frames, int Fps, double MotionScale);

/// <summary>Source image and mask as encoded PNG/JPEG bytes; resized to the item's size, mask binarised (white = repaint).
/// A mask that is all white makes this plain img2img.</summary>
public sealed record InpaintRequest(byte[] Image, byte[] Mask, double Strength);

public sealed record RenderProgress(int ItemIndex, int Step, int TotalSteps);

/// <summary>What one item produced: one PNG for an image, frames + an animated GIF preview for a video.</summary>
public sealed record RenderResult
{
    /// <summary>PNG bytes (images and inpainting); for video, the first frame.</summary>
    public required byte[] Png { get; init; }
    /// <summary>Video only: one PNG per frame.</summary>
    public IReadOnlyList<byte[]>? FramePngs { get; init; }
    /// <summary>Video only: animated GIF preview.</summary>
    public byte[]? PreviewGif { get; init; }
    public long Seed { get; init; }
    public TimeSpan EncodeTime { get; init; }
    public TimeSpan DenoiseTime { get; init; }
    public TimeSpan DecodeTime { get; init; }
}

/// <summary>Static facts about a loaded pipeline (for sidecars and logs).</summary>
public sealed record PipelineInfo(string ModelDirectory, string ModelHash, string Device, QuantizationMode Quantization, long QuantizedLinearBytes, long Fp32LinearBytes);

public interface IRenderPipeline : IDisposable
{
    PipelineInfo Info { get; }

    /// <summary>Renders a batch in one model pass where possible (CFG doubles the batch).
    /// Deterministic: the same request and machine give bit-identical pixels, alone or in a batch.</summary>
    IReadOnlyList<RenderResult> Render(IReadOnlyList<RenderRequest> batch, IProgress<RenderProgress>? progress = null, CancellationToken cancellationToken = default);
}
