namespace BatchRender.Core.State;

// What the pipeline records about jobs and their items (DESIGN.md "Job and item state"). Item states move forward
// only: queued → rendering → done | failed | dead-lettered | cancelled (rendering → queued on a transient failure).
// A finished item never changes again, so a redelivered task that finds its item finished is a no-op.

public static class ItemStates
{
    public const string Queued = "queued";
    public const string Rendering = "rendering";
    public const string Done = "done";
    public const string Failed = "failed";
    public const string DeadLettered = "dead-lettered";
    public const string Cancelled = "cancelled";

    public static bool IsFinished(string state) => state is Done or Failed or DeadLettered or Cancelled;
}

public static class JobStatuses
{
    public const string Queued = "queued";
    public const string Running = "running";
    public const string Done = "done";
    /// <summary>Ended with at least one failed or dead-lettered item.</summary>
    public const string Failed = "failed";
    public const string Cancelled = "cancelled";

    public static bool IsEnded(string status) => status is Done or Failed or Cancelled;
}

/// <summary>Items of a job per state.</summary>
public sealed record ItemCounts(int Total, int Queued, int Rendering, int Done, int Failed, int DeadLettered, int Cancelled)
{
    public int Finished => Done + Failed + DeadLettered + Cancelled;
    public bool AllFinished => Total > 0 && Finished == Total;
}

public sealed record JobRecord(
    string JobId,
    string Status,
    ItemCounts Counts,
    DateTimeOffset CreatedAt,
    DateTimeOffset? StartedAt,
    DateTimeOffset? FinishedAt,
    string SourceManifest,
    string ManifestSha256,
    bool CancelRequested,
    bool IngestCompleted,
    IReadOnlyList<string> Warnings);

public sealed record ItemRecord(
    string JobId,
    string ItemId,
    string State,
    string Kind,
    string Prompt,
    long Seed,
    int Width,
    int Height,
    string MessageId,
    int Attempts,
    string? LastError,
    IReadOnlyList<string> Outputs,
    string? WorkerId,
    DateTimeOffset? StartedAt,
    DateTimeOffset? FinishedAt,
    IReadOnlyDictionary<string, double> TimingsMs);

/// <summary>A job to record at ingest.</summary>
public sealed record NewJob(string JobId, string SourceManifest, string ManifestSha256, int TotalItems, IReadOnlyList<string>? Warnings = null);

public enum ItemStartDecision
{
    /// <summary>Render it: the item is now <c>rendering</c> with one more attempt, held by this worker.</summary>
    Render,
    /// <summary>The item already finished (a redelivery): complete the message without rendering.</summary>
    AlreadyFinished,
    /// <summary>The job was cancelled: the item is now <c>cancelled</c>; complete the message without rendering.</summary>
    Cancelled,
    /// <summary>No such item (the job was never ingested here): dead-letter the message.</summary>
    UnknownItem,
}

/// <summary>Outcome of an item state change.</summary>
/// <param name="Applied">False when the change was a no-op (the item had already finished).</param>
/// <param name="EndedJob">Set for exactly one caller: the one whose change finished the job's last item.</param>
public sealed record ItemTransition(bool Applied, ItemRecord? Item, JobRecord? EndedJob);

public sealed record ItemStart(ItemStartDecision Decision, ItemRecord? Item, JobRecord? EndedJob);

/// <summary>The job id exists with a different manifest: ingesting it again would mix two jobs.</summary>
public sealed class JobConflictException(string jobId)
    : Exception($"Job '{jobId}' already exists with a different manifest; give the new manifest another jobId.")
{
    public string JobId { get; } = jobId;
}
