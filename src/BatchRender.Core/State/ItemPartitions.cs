using System.Text;

namespace BatchRender.Core.State;

/// <summary>
/// Where a job's items live in the items table: spread over <see cref="Count"/> partitions, <c>{jobId}~{shard}</c>, by a
/// stable hash of the item id. One partition per job would cap a job at one partition's throughput (Azure Tables: about
/// 2,000 entities/s; Azurite slows with every entity already in a partition, since it scans the partition on insert),
/// and a 100k-item ingest needs more. Each partition has its own counts row (from its first item transition on), which
/// changes in the same entity-group transaction as its items; a job's counts are its total plus the partitions' moves.
/// </summary>
internal static class ItemPartitions
{
    public const int Count = 64;
    /// <summary>Job ids are <c>[A-Za-z0-9._-]</c>, all below <c>~</c>, so <c>{jobId}~</c> .. <c>{jobId}~~</c> holds exactly one job's partitions.</summary>
    private const char Separator = '~';

    public static string For(string jobId, string itemId) => Of(jobId, Shard(itemId));

    public static string Of(string jobId, int shard) => $"{jobId}{Separator}{shard:x2}";

    public static IEnumerable<string> All(string jobId) => Enumerable.Range(0, Count).Select(s => Of(jobId, s));

    /// <summary>Partition keys k with From &lt;= k &lt; To are exactly the job's partitions.</summary>
    public static (string From, string To) Range(string jobId) => ($"{jobId}{Separator}", $"{jobId}{Separator}{Separator}");

    public static string JobIdOf(string partitionKey)
    {
        var separator = partitionKey.LastIndexOf(Separator);
        return separator < 0 ? partitionKey : partitionKey[..separator];
    }

    /// <summary>FNV-1a over the id's UTF-8 bytes: the same shard in every process and version (string.GetHashCode is not).</summary>
    public static int Shard(string itemId)
    {
        uint hash = 2166136261;
        foreach (var b in Encoding.UTF8.GetBytes(itemId)) hash = (hash ^ b) * 16777619;
        return (int)(hash % Count);
    }
}

/// <summary>
/// How many of a job's items fall in each partition, counted as ingest expands the manifest and recorded in the
/// partitions' counts rows when ingest completes (<see cref="JobStateStore.MarkIngestCompletedAsync"/>): an item
/// transition then knows when its partition has finished, and only then looks at the whole job.
/// </summary>
public sealed class ItemPartitionTotals
{
    private readonly int[] _items = new int[ItemPartitions.Count];

    public static ItemPartitionTotals Of(IEnumerable<string> itemIds)
    {
        var totals = new ItemPartitionTotals();
        foreach (var id in itemIds) totals.Add(id);
        return totals;
    }

    public void Add(string itemId) => _items[ItemPartitions.Shard(itemId)]++;

    /// <summary>The shards holding items, with their item counts.</summary>
    internal IEnumerable<(int Shard, int Items)> NonEmpty =>
        _items.Select((n, shard) => (shard, n)).Where(p => p.n > 0);
}

