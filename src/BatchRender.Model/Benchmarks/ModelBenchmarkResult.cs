using System.Text.Json.Serialization;

namespace BatchRender.Model.Benchmarks;

/// <summary>
/// One entry of <c>bench --json</c>'s "models" array (DESIGN.md, CLI). Times in milliseconds (median of the repeats);
/// ratios are "how many times faster A is than B" (time of B / time of A), measured in the same run; a missing
/// measurement is null (with the reason in <see cref="Notes"/>).
/// </summary>
public sealed record ModelBenchmarkResult
{
    /// <summary>Keys of <see cref="Ms"/>.</summary>
    public const string Fp32 = "fp32", Bf16 = "bf16", Int8Dynamic = "int8-dynamic", PyTorchFp32 = "pytorch-fp32", PyTorchInt8Dynamic = "pytorch-int8-dynamic";

    [JsonPropertyName("config")] public required string Config { get; init; }
    [JsonPropertyName("threads")] public int Threads { get; init; }
    /// <summary>Sampler steps of a full render; null for a single transformer forward.</summary>
    [JsonPropertyName("steps")] public int? Steps { get; init; }
    /// <summary>Image size in pixels (square sizes; see <see cref="Width"/>/<see cref="Height"/> otherwise).</summary>
    [JsonPropertyName("size")] public int Size { get; init; }
    [JsonPropertyName("what")] public required string What { get; init; }
    [JsonPropertyName("ms")] public required IReadOnlyDictionary<string, double?> Ms { get; init; }
    /// <summary>Fastest repeat per variant: on a machine shared with other work, the least disturbed measurement.</summary>
    [JsonPropertyName("msMin")] public IReadOnlyDictionary<string, double?>? MsMin { get; init; }
    [JsonPropertyName("ratios")] public required IReadOnlyDictionary<string, double?> Ratios { get; init; }
    /// <summary>PSNR of the decoded image of a full deterministic render vs fp32 (null until a render is benchmarked).</summary>
    [JsonPropertyName("psnrDb")] public required IReadOnlyDictionary<string, double?> PsnrDb { get; init; }
    /// <summary>Wall time of one whole render (text encoders, every denoising step with CFG, VAE decode) per mode, when
    /// the config has a model to render with; ratios "render int8-dynamic/fp32" and "render bf16/fp32" go with it.</summary>
    [JsonPropertyName("renderMs")] public IReadOnlyDictionary<string, double?>? RenderMs { get; init; }
    /// <summary>SNR of one transformer forward's output vs TorchSharp fp32 ("pytorch-fp32" = the anchor's agreement with ours).</summary>
    [JsonPropertyName("snrDb")] public required IReadOnlyDictionary<string, double?> SnrDb { get; init; }

    [JsonPropertyName("device")] public required string Device { get; init; }
    [JsonPropertyName("width")] public int Width { get; init; }
    [JsonPropertyName("height")] public int Height { get; init; }
    [JsonPropertyName("batch")] public int Batch { get; init; }
    [JsonPropertyName("model")] public required ModelShape Model { get; init; }
    /// <summary>int8 kernel used ("fbgemm", "intmm", "reference").</summary>
    [JsonPropertyName("int8Kernel")] public string? Int8Kernel { get; init; }
    [JsonPropertyName("memory")] public required QuantizedMemory Memory { get; init; }
    /// <summary>The block's Linear shapes timed per kernel (the evidence for the kernel choice); null when not measured.</summary>
    [JsonPropertyName("kernels")] public IReadOnlyList<KernelTiming>? Kernels { get; init; }
    /// <summary>The anchor's own report (torch version, BLAS, engine, threads), or null when it did not run.</summary>
    [JsonPropertyName("pytorch")] public System.Text.Json.Nodes.JsonObject? PyTorch { get; init; }
    [JsonPropertyName("notes")] public required IReadOnlyList<string> Notes { get; init; }
}

public sealed record ModelShape(
    [property: JsonPropertyName("hidden")] int Hidden,
    [property: JsonPropertyName("heads")] int Heads,
    [property: JsonPropertyName("headDim")] int HeadDim,
    [property: JsonPropertyName("blocks")] int Blocks,
    [property: JsonPropertyName("tokens")] long Tokens,
    [property: JsonPropertyName("parameters")] long Parameters);

public sealed record QuantizedMemory(
    [property: JsonPropertyName("quantizedLinearBytes")] long QuantizedLinearBytes,
    [property: JsonPropertyName("fp32LinearBytes")] long Fp32LinearBytes,
    [property: JsonPropertyName("ratio")] double Ratio);
