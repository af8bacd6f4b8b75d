using System.Security.Cryptography;
using System.Text.Json;
using System.Text.Json.Serialization;

namespace BatchRender.Core.Messages;

// The render task on the queue (DESIGN.md "Render task message"): one per manifest item, every default resolved,
// so a worker needs nothing but this message and its model to render.

public static class RenderTaskKinds
{
    public const string Image = "image";
    public const string Video = "video";
    public const string Inpaint = "inpaint";
}

/// <summary>Message body: <c>{ jobId, itemId, model, kind, params }</c>.</summary>
public sealed record RenderTaskMessage(
    [property: JsonPropertyName("jobId")] string JobId,
    [property: JsonPropertyName("itemId")] string ItemId,
    [property: JsonPropertyName("model")] string Model,
    [property: JsonPropertyName("kind")] string Kind,
    [property: JsonPropertyName("params")] RenderTaskParams Params)
{
    /// <summary>
    /// The stable <c>MessageId</c> (Service Bus duplicate detection; the idempotency key in Storage Queue mode): SHA-256
    /// of the message's canonical JSON (job, item, model, kind and every resolved parameter, in declaration order),
    /// 64 lowercase hex digits. The same item of the same job with the same parameters always gets the same id.
    /// </summary>
    public string ComputeMessageId() =>
        Convert.ToHexStringLower(SHA256.HashData(JsonSerializer.SerializeToUtf8Bytes(this, RenderTaskMessageJsonContext.Default.RenderTaskMessage)));
}

/// <summary>Source-generated (reflection-free, fixed property order) JSON for the task message.</summary>
[JsonSerializable(typeof(RenderTaskMessage))]
[JsonSourceGenerationOptions(WriteIndented = false)]
public sealed partial class RenderTaskMessageJsonContext : JsonSerializerContext;

public sealed record RenderTaskParams
{
    [JsonPropertyName("prompt")] public required string Prompt { get; init; }
    [JsonPropertyName("negativePrompt")] public string NegativePrompt { get; init; } = "";
    [JsonPropertyName("seed")] public long Seed { get; init; }
    /// <summary>True when the manifest gave no seed and ingest drew one (recorded in the sidecar).</summary>
    [JsonPropertyName("seedWasRandom")] public bool SeedWasRandom { get; init; }
    [JsonPropertyName("width")] public int Width { get; init; }
    [JsonPropertyName("height")] public int Height { get; init; }
    [JsonPropertyName("steps")] public int Steps { get; init; }
    [JsonPropertyName("guidanceScale")] public double GuidanceScale { get; init; }
    [JsonPropertyName("sampler")] public required string Sampler { get; init; }
    [JsonPropertyName("quantization")] public required string Quantization { get; init; }
    [JsonPropertyName("video")] public VideoParams? Video { get; init; }
    [JsonPropertyName("inpaint")] public InpaintParams? Inpaint { get; init; }
}

public sealed record VideoParams(
    [property: JsonPropertyName("frames")] int Frames,
    [property: JsonPropertyName("fps")] int Fps,
    [property: JsonPropertyName("motionScale")] double MotionScale);

/// <summary>Inpaint inputs as blob names in the <c>manifests</c> container, already resolved inside the job's own prefix.</summary>
public sealed record InpaintParams(
    [property: JsonPropertyName("image")] string ImageBlob,
    [property: JsonPropertyName("mask")] string MaskBlob,
    [property: JsonPropertyName("strength")] double Strength);
