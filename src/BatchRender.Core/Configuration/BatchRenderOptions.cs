using System.ComponentModel.DataAnnotations;

namespace BatchRender.Core.Configuration;

// Every setting the code reads, by section. The same names are used by appsettings, environment variables
// (Section__Key), the Bicep app settings and the Kubernetes ConfigMap; the infra tests check that they agree.
// Connections ("Storage", "ServiceBus") follow the Azure SDK / Functions identity-based connection format:
// Storage__blobServiceUri / Storage__queueServiceUri / Storage__tableServiceUri, ServiceBus__fullyQualifiedNamespace,
// or a connection string for local development (Azurite).

/// <summary>Names of the configuration sections.</summary>
public static class ConfigSections
{
    public const string Storage = "Storage";
    public const string ServiceBus = "ServiceBus";
    public const string Transport = "Transport";
    public const string Blobs = "Blobs";
    public const string State = "State";
    public const string Limits = "Limits";
    public const string Defaults = "Defaults";
    public const string Models = "Models";
    public const string Worker = "Worker";
    public const string Telemetry = "Telemetry";
}

public enum TransportKind { StorageQueue, ServiceBus }

public sealed class TransportOptions
{
    public TransportKind Kind { get; set; } = TransportKind.StorageQueue;
    [Required, RegularExpression("^[a-z0-9](?:[a-z0-9-]{1,61}[a-z0-9])$")]
    public string QueueName { get; set; } = "render-tasks";
    /// <summary>Storage Queue mode only: where poison messages go (the dead-letter queue).</summary>
    [Required]
    public string PoisonQueueName { get; set; } = "render-tasks-poison";
    /// <summary>Deliveries before a task is dead-lettered (Service Bus: the queue's MaxDeliveryCount must match).</summary>
    [Range(1, 100)]
    public int MaxDeliveryCount { get; set; } = 5;
    /// <summary>Peek-lock duration (Service Bus queue LockDuration) / Storage Queue visibility timeout; renewed while rendering.</summary>
    public TimeSpan LockDuration { get; set; } = TimeSpan.FromMinutes(1);
    /// <summary>Storage Queue mode only: tasks packed into one queue message (one request sends, receives and locks
    /// them together). Keep it at most Worker:BatchSize: a worker receives whole messages.</summary>
    [Range(1, 32)]
    public int TasksPerQueueMessage { get; set; } = 4;
}

public sealed class BlobOptions
{
    [Required] public string ManifestsContainer { get; set; } = "manifests";
    [Required] public string RendersContainer { get; set; } = "renders";
    [Required] public string SchedulesContainer { get; set; } = "schedules";
}

public sealed class StateOptions
{
    [Required] public string JobsTable { get; set; } = "jobs";
    [Required] public string ItemsTable { get; set; } = "jobitems";
    [Required] public string SchedulesTable { get; set; } = "schedules";
}

public sealed class LimitsOptions
{
    [Range(1, 10_000_000)] public int MaxItems { get; set; } = 100_000;
    [Range(1, 100_000)] public int MaxPromptLength { get; set; } = 2_000;
    [Range(2, 10_000)] public int MaxFrames { get; set; } = 240;
    [Range(64 * 64, 2048 * 2048)] public long MaxPixels { get; set; } = 2048L * 2048L;
}

/// <summary>Configured defaults applied after the manifest's own <c>defaults</c>.</summary>
public sealed class RenderDefaultsOptions
{
    [Required] public string Model { get; set; } = "demo";
    public int Width { get; set; } = 128;
    public int Height { get; set; } = 128;
    public int Steps { get; set; } = 20;
    public double GuidanceScale { get; set; } = 5.0;
    public string NegativePrompt { get; set; } = "";
    public string Sampler { get; set; } = "ddim";
    public string Quantization { get; set; } = "int8-dynamic";
    /// <summary>Video items: frames, frames per second and motion scale when the item's <c>video</c> leaves them out.</summary>
    public int VideoFrames { get; set; } = 16;
    public int VideoFps { get; set; } = 8;
    public double VideoMotionScale { get; set; } = 1.0;
    /// <summary>Inpaint items: strength when the item's <c>inpaint</c> leaves it out.</summary>
    public double InpaintStrength { get; set; } = 0.8;
}

/// <summary>One served model: <c>Models:{name}:Path</c> is a diffusers-layout directory.</summary>
public sealed class ModelEntryOptions
{
    [Required] public string Path { get; set; } = "";
    /// <summary>The guidance scale this model renders best at: items of a manifest that names the model and gives no
    /// guidance scale (neither the item nor the manifest's <c>defaults</c>) get it instead of <c>Defaults:GuidanceScale</c>.
    /// The demo model follows its prompts best at 3 (models/demo/README.md); the real checkpoint keeps the default.</summary>
    public double? GuidanceScale { get; set; }
}

public sealed class WorkerOptions
{
    /// <summary>Tasks received per batch (and the most rendered in one model pass).</summary>
    [Range(1, 64)] public int BatchSize { get; set; } = 4;
    /// <summary>Rendered batches whose outputs may still be writing (PNGs, sidecars, item state, settlement) while the
    /// next is rendered (and the one after it received and admitted); 0 runs each batch to the end before receiving
    /// the next.</summary>
    [Range(0, 16)] public int BatchesWriting { get; set; } = 2;
    /// <summary>Port of /healthz and /readyz.</summary>
    [Range(1, 65535)] public int HealthPort { get; set; } = 8080;
    /// <summary>How long a SIGTERM'd worker keeps rendering before it abandons what is left (Kubernetes
    /// terminationGracePeriodSeconds must be larger).</summary>
    public TimeSpan DrainTimeout { get; set; } = TimeSpan.FromSeconds(50);
    /// <summary>The longest one model pass may take: past it the group's tasks go back to the queue (a render that
    /// overruns on every delivery is dead-lettered), so a stalled device cannot hold tasks for ever under renewed locks.</summary>
    public TimeSpan RenderTimeout { get; set; } = TimeSpan.FromMinutes(30);
    /// <summary>"auto" | "cpu" | "cuda".</summary>
    public string Device { get; set; } = "auto";
    /// <summary>Intra-op threads for the model; 0 = TorchSharp's default.</summary>
    [Range(0, 1024)] public int Threads { get; set; }
    /// <summary>Models this worker loads at start-up (the rest of Models: is known but not loaded).</summary>
    public string[] Preload { get; set; } = ["demo"];
}

public sealed class TelemetryOptions
{
    /// <summary>OTLP endpoint; empty = no exporter (nothing printed by default).</summary>
    public string? OtlpEndpoint { get; set; }
    public string ServiceName { get; set; } = "batchrender";
}

/// <summary>
/// The <c>Storage</c> connection, in the Azure Functions format: a connection string as the section's own value
/// (<c>Storage=UseDevelopmentStorage=true</c>) or as <c>Storage:ConnectionString</c> (Azurite, local); or service URIs
/// (<c>Storage:blobServiceUri</c>, <c>Storage:queueServiceUri</c>, <c>Storage:tableServiceUri</c>) reached with
/// managed identity (<c>DefaultAzureCredential</c>) in Azure: no keys in configuration.
/// </summary>
public sealed class StorageConnectionOptions : IValidatableObject
{
    public string? ConnectionString { get; set; }
    public Uri? BlobServiceUri { get; set; }
    public Uri? QueueServiceUri { get; set; }
    public Uri? TableServiceUri { get; set; }

    public bool UsesConnectionString => !string.IsNullOrWhiteSpace(ConnectionString);

    public IEnumerable<ValidationResult> Validate(ValidationContext validationContext)
    {
        if (UsesConnectionString) yield break;
        if (BlobServiceUri is null || TableServiceUri is null)
            yield return new ValidationResult(
                "Storage needs a connection string (Storage, or Storage:ConnectionString) or, for managed identity, " +
                "Storage:blobServiceUri and Storage:tableServiceUri (and Storage:queueServiceUri with the StorageQueue transport).",
                [nameof(BlobServiceUri), nameof(TableServiceUri)]);
    }
}

/// <summary>
/// The <c>ServiceBus</c> connection: a connection string (the section's value or <c>ServiceBus:ConnectionString</c>)
/// or <c>ServiceBus:fullyQualifiedNamespace</c> with managed identity. Needed only with the ServiceBus transport.
/// </summary>
public sealed class ServiceBusConnectionOptions
{
    public string? ConnectionString { get; set; }
    public string? FullyQualifiedNamespace { get; set; }

    public bool IsConfigured => !string.IsNullOrWhiteSpace(ConnectionString) || !string.IsNullOrWhiteSpace(FullyQualifiedNamespace);
}
