using BatchRender.Worker.Rendering;
using System.Text.Json;
using System.Text.Json.Serialization;
using BatchRender.Core.Messages;

namespace BatchRender.Worker.Processing;

/// <summary>
/// <c>renders/{jobId}/{itemId}.json</c>: everything needed to reproduce the item and check its outputs: the prompt and
/// every parameter, the model and its weights' hash, timings, the worker, and each output blob with its SHA-256.
/// </summary>
public sealed record RenderSidecar
{
    public required string JobId { get; init; }
    public required string ItemId { get; init; }
    public required string Kind { get; init; }
    public required string Prompt { get; init; }
    public required string NegativePrompt { get; init; }
    public required long Seed { get; init; }
    /// <summary>True when the manifest gave no seed and ingest drew this one.</summary>
    public required bool SeedWasRandom { get; init; }
    public required int Width { get; init; }
    public required int Height { get; init; }
    public required string Sampler { get; init; }
    public required int Steps { get; init; }
    public required double GuidanceScale { get; init; }
    public required string Model { get; init; }
    public required string ModelHash { get; init; }
    public required string Quantization { get; init; }
    public VideoParams? Video { get; init; }
    public InpaintParams? Inpaint { get; init; }
    public required IReadOnlyDictionary<string, double> TimingsMs { get; init; }
    public required string WorkerId { get; init; }
    public required int DeliveryCount { get; init; }
    public required DateTimeOffset RenderedAt { get; init; }
    /// <summary>Every output blob (in <c>renders</c>) with its content hash: the image, or the frames and the preview.</summary>
    public required IReadOnlyList<SidecarOutput> Outputs { get; init; }

    public static readonly JsonSerializerOptions Json = new(JsonSerializerDefaults.Web)
    {
        WriteIndented = true,
        DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull,
        // Prompts in Chinese stay readable in the file.
        Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping,
    };

    public BinaryData ToBinaryData() => BinaryData.FromBytes(JsonSerializer.SerializeToUtf8Bytes(this, Json));

    /// <summary>The sidecar of a rendered task: the task's resolved parameters, how it was rendered, and its outputs.</summary>
    public static RenderSidecar For(RenderTaskMessage task, RenderedOutput output, string workerId, int deliveryCount,
                                    IReadOnlyList<SidecarOutput> outputs)
    {
        var p = task.Params;
        return new RenderSidecar
        {
            JobId = task.JobId, ItemId = task.ItemId, Kind = task.Kind,
            Prompt = p.Prompt, NegativePrompt = p.NegativePrompt, Seed = p.Seed, SeedWasRandom = p.SeedWasRandom,
            Width = p.Width, Height = p.Height, Sampler = p.Sampler, Steps = p.Steps, GuidanceScale = p.GuidanceScale,
            Model = task.Model, ModelHash = output.ModelHash, Quantization = p.Quantization, Video = p.Video, Inpaint = p.Inpaint,
            TimingsMs = output.TimingsMs, WorkerId = workerId, DeliveryCount = deliveryCount, RenderedAt = DateTimeOffset.UtcNow,
            Outputs = outputs,
        };
    }

    public static RenderSidecar? Parse(BinaryData data) => JsonSerializer.Deserialize<RenderSidecar>(data.ToMemory().Span, Json);
}

public sealed record SidecarOutput(string Blob, string ContentType, long Bytes, string Sha256);
