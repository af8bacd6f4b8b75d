using Azure;
using Azure.Data.Tables;

namespace BatchRender.Core.State;

// Table rows. Jobs table: one row per job (PartitionKey = jobId, RowKey = "job"). Items table: one partition per job
// holding its items (RowKey = itemId) and the job's counts row (RowKey = "!counts", which no item id can be), so an
// item's state and the counts change together in one entity-group transaction.

internal sealed class JobEntity : ITableEntity
{
    public const string Row = "job";
    public string PartitionKey { get; set; } = "";
    public string RowKey { get; set; } = Row;
    public DateTimeOffset? Timestamp { get; set; }
    public ETag ETag { get; set; }

    public string Status { get; set; } = JobStatuses.Queued;
    public DateTimeOffset CreatedAt { get; set; }
    public DateTimeOffset? FinishedAt { get; set; }
    public string SourceManifest { get; set; } = "";
    public string ManifestSha256 { get; set; } = "";
    public int TotalItems { get; set; }
    public bool CancelRequested { get; set; }
    public bool IngestCompleted { get; set; }
    public string WarningsJson { get; set; } = "[]";
}

internal sealed class CountsEntity : ITableEntity
{
    public const string Row = "!counts";
    public string PartitionKey { get; set; } = "";
    public string RowKey { get; set; } = Row;
    public DateTimeOffset? Timestamp { get; set; }
    public ETag ETag { get; set; }

    public int Total { get; set; }
    public int Queued { get; set; }
    public int Rendering { get; set; }
    public int Done { get; set; }
    public int Failed { get; set; }
    public int DeadLettered { get; set; }
    public int Cancelled { get; set; }
    public DateTimeOffset? FirstStartedAt { get; set; }

    public ItemCounts ToCounts() => new(Total, Queued, Rendering, Done, Failed, DeadLettered, Cancelled);

    public void Move(string from, string to)
    {
        if (from == to) return;
        Add(from, -1);
        Add(to, +1);
    }

    private void Add(string state, int delta)
    {
        switch (state)
        {
            case ItemStates.Queued: Queued += delta; break;
            case ItemStates.Rendering: Rendering += delta; break;
            case ItemStates.Done: Done += delta; break;
            case ItemStates.Failed: Failed += delta; break;
            case ItemStates.DeadLettered: DeadLettered += delta; break;
            case ItemStates.Cancelled: Cancelled += delta; break;
            default: throw new ArgumentException($"Unknown item state '{state}'.", nameof(state));
        }
    }
}

internal sealed class ItemEntity : ITableEntity
{
    public string PartitionKey { get; set; } = "";
    public string RowKey { get; set; } = "";
    public DateTimeOffset? Timestamp { get; set; }
    public ETag ETag { get; set; }

    public string State { get; set; } = ItemStates.Queued;
    public string Kind { get; set; } = "";
    public string Prompt { get; set; } = "";
    public long Seed { get; set; }
    public int Width { get; set; }
    public int Height { get; set; }
    public string MessageId { get; set; } = "";
    public int Attempts { get; set; }
    public string? LastError { get; set; }
    public string OutputsJson { get; set; } = "[]";
    public string? WorkerId { get; set; }
    public DateTimeOffset? StartedAt { get; set; }
    public DateTimeOffset? FinishedAt { get; set; }
    public string TimingsJson { get; set; } = "{}";
}
