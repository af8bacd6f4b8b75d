using System.Diagnostics;
using System.Diagnostics.Metrics;

namespace BatchRender.Core.Telemetry;

/// <summary>
/// The pipeline's traces and metrics ("BatchRender"): ingest → message → render → write. The trace context crosses
/// the queue in the message's application properties as W3C <c>traceparent</c>/<c>tracestate</c>, so a render span
/// continues the ingest trace that enqueued it.
/// </summary>
public static class BatchRenderTelemetry
{
    public const string Name = "BatchRender";
    public const string TraceParentProperty = "traceparent";
    public const string TraceStateProperty = "tracestate";

    public static readonly ActivitySource ActivitySource = new(Name);
    public static readonly Meter Meter = new(Name);

    public static readonly Counter<long> TasksEnqueued = Meter.CreateCounter<long>("batchrender.tasks.enqueued", "{task}");
    public static readonly Counter<long> ItemTransitions = Meter.CreateCounter<long>("batchrender.items.transitions", "{item}",
        "Item state changes, tagged with the new state.");
    public static readonly Counter<long> BlobWrites = Meter.CreateCounter<long>("batchrender.blobs.written", "{blob}",
        "Create-only blob writes, tagged with the outcome (created | identical).");
    public static readonly Counter<long> BlobWriteRetries = Meter.CreateCounter<long>("batchrender.blobs.retries", "{retry}");
    public static readonly Counter<long> JobsEnded = Meter.CreateCounter<long>("batchrender.jobs.ended", "{job}");
    public static readonly Histogram<double> IngestDuration = Meter.CreateHistogram<double>("batchrender.ingest.duration", "s");

    /// <summary>Writes the current (or given) activity's W3C context into message properties.</summary>
    public static void InjectTraceContext(IDictionary<string, string> properties, Activity? activity = null)
    {
        activity ??= Activity.Current;
        if (activity is null || activity.IdFormat != ActivityIdFormat.W3C || activity.Id is null) return;
        properties[TraceParentProperty] = activity.Id;
        if (!string.IsNullOrEmpty(activity.TraceStateString))
            properties[TraceStateProperty] = activity.TraceStateString;
    }

    /// <summary>The remote parent carried by a message, or default when it carries none (or a malformed one).</summary>
    public static ActivityContext ExtractTraceContext(IReadOnlyDictionary<string, string> properties)
    {
        if (!properties.TryGetValue(TraceParentProperty, out var traceParent)) return default;
        properties.TryGetValue(TraceStateProperty, out var traceState);
        return ActivityContext.TryParse(traceParent, traceState, isRemote: true, out var context) ? context : default;
    }

    /// <summary>Starts a consumer span parented on the context a message carries.</summary>
    public static Activity? StartFromMessage(string name, IReadOnlyDictionary<string, string> properties, ActivityKind kind = ActivityKind.Consumer) =>
        ActivitySource.StartActivity(name, kind, ExtractTraceContext(properties));
}
