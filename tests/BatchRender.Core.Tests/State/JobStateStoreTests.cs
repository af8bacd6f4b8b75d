using BatchRender.Core.Configuration;
using BatchRender.Core.Messages;
using BatchRender.Core.State;
using BatchRender.Core.Tests.Infrastructure;
using Microsoft.Extensions.Options;

namespace BatchRender.Core.Tests.State;

public sealed class JobStateStoreTests(AzuriteFixture azurite) : IClassFixture<AzuriteFixture>
{
    private JobStateStore NewStore() => new(azurite.TableService(), Options.Create(new StateOptions
    {
        JobsTable = AzuriteFixture.UniqueName("jobs"), ItemsTable = AzuriteFixture.UniqueName("items"),
    }));

    internal static RenderTaskMessage Message(string jobId, int i) => new(jobId, $"item-{i:D4}", "demo", RenderTaskKinds.Image,
        new RenderTaskParams { Prompt = $"一个红色的圆 {i}", Seed = i, Width = 64, Height = 64, Steps = 2, Sampler = "ddim", Quantization = "none" });

    private static async Task<JobStateStore> StoreWithJobAsync(JobStateStore store, string jobId, int items)
    {
        await store.CreateJobAsync(new NewJob(jobId, "manifests/m.json", "hash-1", items));
        await store.AddItemsAsync(jobId, Enumerable.Range(0, items).Select(i => (Message(jobId, i), $"mid-{i}")).ToList());
        return store;
    }

    [Fact]
    public async Task A_new_job_has_every_item_queued_in_batches_and_creating_it_again_is_idempotent()
    {
        var store = NewStore();
        var (job, created) = await store.CreateJobAsync(new NewJob("job-a", "manifests/a.json", "hash-a", 250));
        Assert.True(created);
        await store.AddItemsAsync("job-a", Enumerable.Range(0, 250).Select(i => (Message("job-a", i), $"mid-{i}")).ToList());
        await store.AddItemsAsync("job-a", Enumerable.Range(0, 250).Select(i => (Message("job-a", i), $"mid-{i}")).ToList()); // resumed ingest

        job = (await store.GetJobAsync("job-a"))!;
        Assert.Equal(JobStatuses.Queued, job.Status);
        Assert.Equal(new ItemCounts(250, 250, 0, 0, 0, 0, 0), job.Counts);
        Assert.Equal("manifests/a.json", job.SourceManifest);
        var items = await store.GetItemsAsync("job-a").ToListAsync();
        Assert.Equal(250, items.Count);
        // Spread over the item partitions, listed back merged in item-id order.
        Assert.Equal(items.Select(i => i.ItemId).Order(StringComparer.Ordinal), items.Select(i => i.ItemId));
        Assert.InRange(items.Select(i => ItemPartitions.For("job-a", i.ItemId)).Distinct().Count(), ItemPartitions.Count / 2, ItemPartitions.Count);
        Assert.All(items, i => Assert.Equal(ItemStates.Queued, i.State));
        var first = items[0];
        Assert.Equal(("item-0000", "一个红色的圆 0", "mid-0", RenderTaskKinds.Image, 64), (first.ItemId, first.Prompt, first.MessageId, first.Kind, first.Width));

        var (again, createdAgain) = await store.CreateJobAsync(new NewJob("job-a", "manifests/a.json", "hash-a", 250));
        Assert.False(createdAgain);
        Assert.Equal(job.CreatedAt, again.CreatedAt);
        await Assert.ThrowsAsync<JobConflictException>(() => store.CreateJobAsync(new NewJob("job-a", "manifests/other.json", "hash-b", 3)));
        Assert.Null(await store.GetJobAsync("no-such-job"));
    }

    [Fact]
    public async Task A_job_too_large_for_one_query_page_is_listed_whole_in_item_id_order()
    {
        // Over 1,000 items: read partition by partition and merged (a small job comes back in one query page).
        const int n = 1_100;
        var store = await StoreWithJobAsync(NewStore(), "job-l", n);
        var ids = await store.GetItemsAsync("job-l").Select(i => i.ItemId).ToListAsync();
        Assert.Equal(Enumerable.Range(0, n).Select(i => $"item-{i:D4}"), ids);
    }

    [Fact]
    public async Task An_item_renders_once_and_a_redelivered_task_finds_it_done()
    {
        var store = await StoreWithJobAsync(NewStore(), "job-b", 2);
        var start = await store.StartItemAsync("job-b", "item-0000", "worker-1");
        Assert.Equal(ItemStartDecision.Render, start.Decision);
        Assert.Equal((ItemStates.Rendering, 1, "worker-1"), (start.Item!.State, start.Item.Attempts, start.Item.WorkerId));
        Assert.Equal(JobStatuses.Running, (await store.GetJobAsync("job-b"))!.Status);

        var done = await store.CompleteItemAsync("job-b", "item-0000", ["job-b/item-0000.png", "job-b/item-0000.json"],
            new Dictionary<string, double> { ["render"] = 1200, ["write"] = 30 });
        Assert.True(done.Applied);
        Assert.Null(done.EndedJob);

        var redelivered = await store.StartItemAsync("job-b", "item-0000", "worker-2");
        Assert.Equal(ItemStartDecision.AlreadyFinished, redelivered.Decision);
        Assert.False((await store.CompleteItemAsync("job-b", "item-0000", ["other.png"], new Dictionary<string, double>())).Applied);
        Assert.False((await store.FailItemAsync("job-b", "item-0000", "late failure")).Applied);

        var item = (await store.GetItemAsync("job-b", "item-0000"))!;
        Assert.Equal(ItemStates.Done, item.State);
        Assert.Equal(["job-b/item-0000.png", "job-b/item-0000.json"], item.Outputs);
        Assert.Equal(1200, item.TimingsMs["render"]);
        Assert.Equal("worker-1", item.WorkerId);
        Assert.Equal(new ItemCounts(2, 1, 0, 1, 0, 0, 0), (await store.GetJobAsync("job-b"))!.Counts);
    }

    [Fact]
    public async Task A_released_item_is_queued_again_with_its_error_and_counts_attempts()
    {
        var store = await StoreWithJobAsync(NewStore(), "job-c", 1);
        await store.StartItemAsync("job-c", "item-0000", "w1");
        await store.ReleaseItemAsync("job-c", "item-0000", "GPU out of memory");
        var item = (await store.GetItemAsync("job-c", "item-0000"))!;
        Assert.Equal((ItemStates.Queued, 1, "GPU out of memory"), (item.State, item.Attempts, item.LastError));

        var again = await store.StartItemAsync("job-c", "item-0000", "w2");
        Assert.Equal(2, again.Item!.Attempts);
        var ended = await store.CompleteItemAsync("job-c", "item-0000", ["job-c/item-0000.png"], new Dictionary<string, double>());
        Assert.NotNull(ended.EndedJob);
        Assert.Equal(JobStatuses.Done, ended.EndedJob.Status);
        Assert.NotNull(ended.EndedJob.FinishedAt);
        Assert.Null((await store.GetItemAsync("job-c", "item-0000"))!.LastError);
    }

    [Fact]
    public async Task Concurrent_workers_and_duplicate_deliveries_keep_counts_exact_and_end_the_job_exactly_once()
    {
        const int n = 30;
        var store = await StoreWithJobAsync(NewStore(), "job-d", n);
        var ends = 0;
        // Every item delivered twice, to two workers at once; some items fail, one is dead-lettered.
        await Parallel.ForEachAsync(Enumerable.Range(0, n * 2), new ParallelOptions { MaxDegreeOfParallelism = 8 }, async (k, _) =>
        {
            var i = k % n;
            var itemId = $"item-{i:D4}";
            var start = await store.StartItemAsync("job-d", itemId, $"worker-{k}");
            if (start.Decision != ItemStartDecision.Render) return;
            var result = i switch
            {
                7 => await store.FailItemAsync("job-d", itemId, "prompt could not be encoded"),
                11 => await store.DeadLetterItemAsync("job-d", itemId, "UnknownModel"),
                _ => await store.CompleteItemAsync("job-d", itemId, [$"job-d/{itemId}.png"], new Dictionary<string, double>()),
            };
            if (result.EndedJob is not null) Interlocked.Increment(ref ends);
        });

        Assert.Equal(1, ends);
        var job = (await store.GetJobAsync("job-d"))!;
        Assert.Equal(new ItemCounts(n, 0, 0, n - 2, 1, 1, 0), job.Counts);
        Assert.Equal(JobStatuses.Failed, job.Status);
        var items = await store.GetItemsAsync("job-d").ToListAsync();
        Assert.Equal(n - 2, items.Count(i => i.State == ItemStates.Done));
        Assert.Equal("prompt could not be encoded", items.Single(i => i.State == ItemStates.Failed).LastError);
        Assert.Null(await store.TryEndJobAsync("job-d"));
    }

    [Fact]
    public async Task With_partition_totals_recorded_only_the_item_that_finishes_its_partition_reads_the_whole_job()
    {
        const int n = 200;
        var scans = new CountsScanCounter();
        var options = new Azure.Data.Tables.TableClientOptions();
        options.AddPolicy(scans, Azure.Core.HttpPipelinePosition.PerCall);
        var store = new JobStateStore(azurite.TableService(options), Options.Create(new StateOptions
        {
            JobsTable = AzuriteFixture.UniqueName("jobs"), ItemsTable = AzuriteFixture.UniqueName("items"),
        }));
        await StoreWithJobAsync(store, "job-t", n);
        var ids = Enumerable.Range(0, n).Select(i => $"item-{i:D4}").ToList();
        // Two items finish before ingest completes (their partitions do not know their totals yet).
        foreach (var id in ids.Take(2))
        {
            await store.StartItemAsync("job-t", id, "worker-1");
            await store.CompleteItemAsync("job-t", id, [$"job-t/{id}.png"], new Dictionary<string, double>());
        }
        var totals = ItemPartitionTotals.Of(ids);
        Assert.Null(await store.MarkIngestCompletedAsync("job-t", totals));
        var partitions = ids.Select(id => ItemPartitions.For("job-t", id)).Distinct().Count();

        scans.Reset();
        JobRecord? ended = null;
        foreach (var id in ids.Skip(2))
        {
            await store.StartItemAsync("job-t", id, "worker-1");
            ended ??= (await store.CompleteItemAsync("job-t", id, [$"job-t/{id}.png"], new Dictionary<string, double>())).EndedJob;
        }
        Assert.Equal((JobStatuses.Done, n), (ended?.Status, ended?.Counts.Done));
        // One look at the job per finished partition, not one per finished item.
        Assert.InRange(scans.Count, 1, partitions);
        // Finishing reads nothing: the rows as the start wrote them (ETag-guarded) serve it.
        Assert.InRange(scans.PointReads, n - 2, 2 * (n - 2));
        Assert.True(partitions < n / 2);
    }

    [Fact]
    public async Task A_job_whose_items_all_finish_before_ingest_completes_ends_with_its_last_item()
    {
        var store = await StoreWithJobAsync(NewStore(), "job-u", 3);
        var ids = Enumerable.Range(0, 3).Select(i => $"item-{i:D4}").ToList();
        var ended = new List<JobRecord>();
        foreach (var id in ids)
        {
            await store.StartItemAsync("job-u", id, "worker-1");
            if ((await store.CompleteItemAsync("job-u", id, [$"job-u/{id}.png"], new Dictionary<string, double>())).EndedJob is { } job)
                ended.Add(job);
        }
        Assert.Equal(JobStatuses.Done, Assert.Single(ended).Status);
        Assert.Null(await store.MarkIngestCompletedAsync("job-u", ItemPartitionTotals.Of(ids)));
        Assert.True((await store.GetJobAsync("job-u"))!.IngestCompleted);
    }

    /// <summary>Counts the range queries over a job's counts rows (what <see cref="JobStateStore.TryEndJobAsync"/> reads).</summary>
    private sealed class CountsScanCounter : Azure.Core.Pipeline.HttpPipelineSynchronousPolicy
    {
        private int _count, _pointReads;
        public int Count => _count;
        /// <summary>Reads of one item or counts row.</summary>
        public int PointReads => _pointReads;

        public void Reset()
        {
            Interlocked.Exchange(ref _count, 0);
            Interlocked.Exchange(ref _pointReads, 0);
        }

        public override void OnSendingRequest(Azure.Core.HttpMessage message)
        {
            var uri = Uri.UnescapeDataString(message.Request.Uri.ToString());
            if (message.Request.Method != Azure.Core.RequestMethod.Get) return;
            if (uri.Contains("$filter") && uri.Contains(CountsEntity.Row)) Interlocked.Increment(ref _count);
            else if (uri.Contains("items") && uri.Contains("RowKey=")) Interlocked.Increment(ref _pointReads);
        }
    }

    [Fact]
    public async Task Cancelling_cancels_queued_items_lets_rendering_ones_finish_then_ends_the_job_cancelled()
    {
        var store = await StoreWithJobAsync(NewStore(), "job-e", 5);
        await store.StartItemAsync("job-e", "item-0000", "w1");
        await store.StartItemAsync("job-e", "item-0001", "w1");
        await store.CompleteItemAsync("job-e", "item-0001", ["job-e/item-0001.png"], new Dictionary<string, double>());

        var (job, ended) = await store.CancelJobAsync("job-e");
        Assert.Null(ended); // item-0000 is still rendering
        Assert.True(job!.CancelRequested);
        Assert.Equal(new ItemCounts(5, 0, 1, 1, 0, 0, 3), job.Counts);

        // A task still on the queue for a cancelled item is completed without rendering.
        Assert.Equal(ItemStartDecision.AlreadyFinished, (await store.StartItemAsync("job-e", "item-0003", "w2")).Decision);
        var last = await store.CompleteItemAsync("job-e", "item-0000", ["job-e/item-0000.png"], new Dictionary<string, double>());
        Assert.Equal(JobStatuses.Cancelled, last.EndedJob!.Status);
        Assert.Equal((null, null), await store.CancelJobAsync("no-such-job"));
    }

    [Fact]
    public async Task Starting_after_cancel_cancels_the_item_and_an_unknown_item_or_job_says_so()
    {
        var store = await StoreWithJobAsync(NewStore(), "job-f", 2);
        await store.StartItemAsync("job-f", "item-0000", "w1");
        var (_, ended) = await store.CancelJobAsync("job-f");
        Assert.Null(ended);
        // A redelivered task for the rendering item after cancel: cancelled rather than rendered again.
        var start = await store.StartItemAsync("job-f", "item-0000", "w2");
        Assert.Equal(ItemStartDecision.Cancelled, start.Decision);
        Assert.Equal(JobStatuses.Cancelled, start.EndedJob!.Status);

        Assert.Equal(ItemStartDecision.UnknownItem, (await store.StartItemAsync("job-f", "nope", "w1")).Decision);
        Assert.Equal(ItemStartDecision.UnknownItem, (await store.StartItemAsync("no-job", "item-0000", "w1")).Decision);
    }

    [Fact]
    public void An_item_partition_is_a_stable_function_of_the_item_id()
    {
        // Workers and ingest in different processes and versions must agree: these values may never change.
        // (FNV-1a of the UTF-8 bytes modulo 64, computed independently.)
        Assert.Equal([1, 63, 46], [ItemPartitions.Shard("item-0000"), ItemPartitions.Shard("star-001"), ItemPartitions.Shard("蓝色")]);
        Assert.Equal("job-a~" + ItemPartitions.Shard("x").ToString("x2"), ItemPartitions.For("job-a", "x"));
        Assert.Equal("job.a-1", ItemPartitions.JobIdOf(ItemPartitions.For("job.a-1", "x")));
        var (from, to) = ItemPartitions.Range("job-a");
        Assert.All(ItemPartitions.All("job-a"), p => Assert.True(string.CompareOrdinal(from, p) <= 0 && string.CompareOrdinal(p, to) < 0));
        // Another job whose id extends this one's never falls in the range.
        Assert.All(ItemPartitions.All("job-ab").Concat(ItemPartitions.All("job-a.b")).Concat(ItemPartitions.All("job-")),
            p => Assert.False(string.CompareOrdinal(from, p) <= 0 && string.CompareOrdinal(p, to) < 0));
    }
}
