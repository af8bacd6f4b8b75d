using Azure;
using Azure.Data.Tables;

namespace BatchRender.Core.State;

// Table rows. Jobs table: one row per job (PartitionKey = jobId, RowKey = "job"). Items table: the job's items spread
// over ItemPartitions ("{jobId}~{shard}", RowKey = itemId), each partition with a counts row (RowKey = "!counts", which
// no item id can be; added by the partition's first item transition), so an item's state and its partition's counts
// change together in one entity-group transaction.

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

/// <summary>One partition's counts. Items start queued without touching it (ingest only inserts), so Queued is the net
/// number of moves into queued (zero or less) and a job's queued count is its total plus the partitions' sum; the other
/// states count the partition's items in them.</summary>
internal sealed class CountsEntity : ITableEntity
{
    public const string Row = "!counts";
    public string PartitionKey { get; set; } = "";
    public string RowKey { get; set; } = Row;
    public DateTimeOffset? Timestamp { get; set; }
    public ETag ETag { get; set; }

    /// <summary>The partition's items, recorded when ingest completes; 0 until then (and in rows of older jobs).</summary>
    public int Total { get; set; }
    public int Queued { get; set; }
    public int Rendering { get; set; }
    public int Done { get; set; }
    public int Failed { get; set; }
    public int DeadLettered { get; set; }
    public int Cancelled { get; set; }
    public DateTimeOffset? FirstStartedAt { get; set; }

    /// <summary>A job's counts: its total and its partitions' counts added up.</summary>
    public static ItemCounts Sum(int total, IEnumerable<CountsEntity> partitions)
    {
        var sum = new CountsEntity { Total = total, Queued = total };
        foreach (var p in partitions)
        {
            sum.Queued += p.Queued;
            sum.Rendering += p.Rendering;
            sum.Done += p.Done;
            sum.Failed += p.Failed;
            sum.DeadLettered += p.DeadLettered;
            sum.Cancelled += p.Cancelled;
        }
        return new(sum.Total, sum.Queued, sum.Rendering, sum.Done, sum.Failed, sum.DeadLettered, sum.Cancelled);
    }

    public int Finished => Done + Failed + DeadLettered + Cancelled;

    public CountsEntity Copy() => (CountsEntity)MemberwiseClone();

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

    public ItemEntity Copy() => (ItemEntity)MemberwiseClone();
}
