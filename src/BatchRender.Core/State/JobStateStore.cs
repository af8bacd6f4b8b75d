using System.Collections.Concurrent;
using System.Runtime.CompilerServices;
using System.Text.Json;
using Azure;
using Azure.Data.Tables;
using BatchRender.Core.Configuration;
using BatchRender.Core.Messages;
using BatchRender.Core.Telemetry;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;

namespace BatchRender.Core.State;

/// <summary>
/// Jobs and items in Azure Table storage with optimistic concurrency: every change reads, decides and writes back
/// guarded by the rows' ETags, retrying on 412. A job's items are spread over <see cref="ItemPartitions"/>; an item's
/// state and its partition's counts change in one transaction, so the counts (summed over the partitions) always equal
/// the items; the change that finishes a job's last item ends the job exactly once.
/// </summary>
public sealed class JobStateStore
{
    private const int TransactionLimit = 100; // entities per entity-group transaction
    private const int MaxConflictRetries = 100;
    private const int SmallJobPage = 1000; // the most entities one query page returns
    private static readonly JsonSerializerOptions Json = new(JsonSerializerDefaults.Web);

    private readonly TableClient _jobs;
    private readonly TableClient _items;
    private readonly TimeProvider _time;
    private readonly ILogger<JobStateStore> _logger;
    private readonly Lazy<Task> _tablesCreated;
    private readonly ConcurrentDictionary<string, Task<NullableResponse<JobEntity>>> _jobReads = new(StringComparer.Ordinal);
    // Rows as this process last wrote them, by (partition, item id) and by partition (see TransitionAsync).
    private const int MaxWrittenRows = 4096;
    private readonly ConcurrentDictionary<(string Partition, string ItemId), ItemEntity> _writtenItems = new();
    private readonly ConcurrentDictionary<string, CountsEntity> _writtenCounts = new(StringComparer.Ordinal);

    public JobStateStore(TableServiceClient tables, IOptions<StateOptions> options, TimeProvider? time = null,
        ILogger<JobStateStore>? logger = null)
    {
        _jobs = tables.GetTableClient(options.Value.JobsTable);
        _items = tables.GetTableClient(options.Value.ItemsTable);
        _time = time ?? TimeProvider.System;
        _logger = logger ?? NullLogger<JobStateStore>.Instance;
        _tablesCreated = new Lazy<Task>(async () =>
        {
            await _jobs.CreateIfNotExistsAsync();
            await _items.CreateIfNotExistsAsync();
        });
    }

    public Task EnsureTablesAsync(CancellationToken cancellationToken = default) => _tablesCreated.Value.WaitAsync(cancellationToken);

    // ---- ingest ---------------------------------------------------------------------------------------------------

    /// <summary>
    /// Records a new job with all its items queued. Idempotent: the same job id with the same manifest hash returns the
    /// existing job (check <see cref="JobRecord.IngestCompleted"/> to resume an interrupted ingest); a different
    /// manifest under the same id throws <see cref="JobConflictException"/>.
    /// </summary>
    public async Task<(JobRecord Job, bool Created)> CreateJobAsync(NewJob job, CancellationToken cancellationToken = default)
    {
        await EnsureTablesAsync(cancellationToken);
        var entity = new JobEntity
        {
            PartitionKey = job.JobId,
            CreatedAt = _time.GetUtcNow(),
            SourceManifest = job.SourceManifest,
            ManifestSha256 = job.ManifestSha256,
            TotalItems = job.TotalItems,
            WarningsJson = JsonSerializer.Serialize(job.Warnings ?? [], Json),
        };
        // No counts rows yet: a partition's row appears with its first item transition (none = nothing moved there).
        try
        {
            await _jobs.AddEntityAsync(entity, cancellationToken);
            return ((await GetJobAsync(job.JobId, cancellationToken))!, true);
        }
        catch (RequestFailedException e) when (e.Status == 409)
        {
            var existing = (await GetJobAsync(job.JobId, cancellationToken))!;
            if (existing.ManifestSha256 != job.ManifestSha256) throw new JobConflictException(job.JobId);
            return (existing, false);
        }
    }

    /// <summary>
    /// Inserts queued items, one transaction of up to 100 per item partition. Items already there (an ingest resumed
    /// after a crash) are left as they are.
    /// </summary>
    public async Task AddItemsAsync(string jobId, IReadOnlyList<(RenderTaskMessage Message, string MessageId)> items,
        CancellationToken cancellationToken = default)
    {
        var chunks = items.Select(i => NewItem(jobId, i.Message, i.MessageId)).GroupBy(e => e.PartitionKey)
            .SelectMany(partition => partition.Chunk(TransactionLimit)).ToList();
        await Parallel.ForEachAsync(chunks, new ParallelOptions { MaxDegreeOfParallelism = 8, CancellationToken = cancellationToken },
            async (entities, ct) =>
            {
                try
                {
                    await _items.SubmitTransactionAsync(entities.Select(e => new TableTransactionAction(TableTransactionActionType.Add, e)), ct);
                }
                catch (TableTransactionFailedException e) when (e.Status == 409)
                {
                    foreach (var entity in entities)
                        await AddIgnoringConflictAsync(_items, entity, ct);
                }
            });
    }

    /// <summary>
    /// Ingest is over: records each partition's item count in its counts row, marks the job ingested, and ends the job
    /// if its items all finished meanwhile (returned when this call ended it). Until a partition knows its total,
    /// every finished item there looks at the whole job (reading all its counts rows); afterwards only the one that
    /// finishes the partition does.
    /// </summary>
    public async Task<JobRecord?> MarkIngestCompletedAsync(string jobId, ItemPartitionTotals totals, CancellationToken cancellationToken = default)
    {
        await EnsureTablesAsync(cancellationToken);
        await Parallel.ForEachAsync(totals.NonEmpty, new ParallelOptions { MaxDegreeOfParallelism = 8, CancellationToken = cancellationToken },
            async (partition, ct) => await SetPartitionTotalAsync(ItemPartitions.Of(jobId, partition.Shard), partition.Items, ct));
        await UpdateJobAsync(jobId, job => { job.IngestCompleted = true; return true; }, cancellationToken);
        return await TryEndJobAsync(jobId, cancellationToken);
    }

    private async Task SetPartitionTotalAsync(string partition, int total, CancellationToken cancellationToken)
    {
        for (var attempt = 0; ; attempt++)
        {
            var counts = await _items.GetEntityIfExistsAsync<CountsEntity>(partition, CountsEntity.Row, cancellationToken: cancellationToken);
            if (!counts.HasValue)
            {
                await AddIgnoringConflictAsync(_items, new CountsEntity { PartitionKey = partition, Total = total }, cancellationToken);
                continue; // read again: ours, or a worker's that raced it
            }
            var row = counts.Value!;
            if (row.Total == total) return;
            row.Total = total;
            try
            {
                await _items.UpdateEntityAsync(row, row.ETag, TableUpdateMode.Replace, cancellationToken);
                return;
            }
            catch (RequestFailedException e) when (e.Status == 412 && attempt < MaxConflictRetries)
            {
                // A worker moved an item there meanwhile: read again.
            }
        }
    }

    private static ItemEntity NewItem(string jobId, RenderTaskMessage message, string messageId) => new()
    {
        PartitionKey = ItemPartitions.For(jobId, message.ItemId),
        RowKey = message.ItemId,
        Kind = message.Kind,
        Prompt = message.Params.Prompt,
        Seed = message.Params.Seed,
        Width = message.Params.Width,
        Height = message.Params.Height,
        MessageId = messageId,
    };

    // ---- reads ----------------------------------------------------------------------------------------------------

    public async Task<JobRecord?> GetJobAsync(string jobId, CancellationToken cancellationToken = default)
    {
        await EnsureTablesAsync(cancellationToken);
        var jobRead = _jobs.GetEntityIfExistsAsync<JobEntity>(jobId, JobEntity.Row, cancellationToken: cancellationToken);
        var countsRead = ReadCountsAsync(jobId, cancellationToken);
        var (job, counts) = (await jobRead, await countsRead);
        return job.HasValue ? ToRecord(job.Value!, counts) : null;
    }

    /// <summary>The counts rows of all the job's partitions.</summary>
    private async Task<List<CountsEntity>> ReadCountsAsync(string jobId, CancellationToken cancellationToken)
    {
        var (from, to) = ItemPartitions.Range(jobId);
        var filter = TableClient.CreateQueryFilter($"PartitionKey ge {from} and PartitionKey lt {to} and RowKey eq {CountsEntity.Row}");
        var counts = new List<CountsEntity>(ItemPartitions.Count);
        await foreach (var row in _items.QueryAsync<CountsEntity>(filter, cancellationToken: cancellationToken))
            counts.Add(row);
        return counts;
    }

    public async Task<ItemRecord?> GetItemAsync(string jobId, string itemId, CancellationToken cancellationToken = default)
    {
        await EnsureTablesAsync(cancellationToken);
        var item = await _items.GetEntityIfExistsAsync<ItemEntity>(ItemPartitions.For(jobId, itemId), itemId, cancellationToken: cancellationToken);
        return item.HasValue ? ToRecord(item.Value!) : null;
    }

    /// <summary>Every item of a job, in item-id order (ordinal): the partitions' queries, each in row order, merged as
    /// they stream page by page.</summary>
    public async IAsyncEnumerable<ItemRecord> GetItemsAsync(string jobId, [EnumeratorCancellation] CancellationToken cancellationToken = default)
    {
        await EnsureTablesAsync(cancellationToken);
        // A small job comes back whole in one page of one query over its partitions (sorted here); a larger one is read
        // partition by partition and merged, never held whole.
        var (from, to) = ItemPartitions.Range(jobId);
        var whole = _items.QueryAsync<ItemEntity>(
            TableClient.CreateQueryFilter($"PartitionKey ge {from} and PartitionKey lt {to} and RowKey ne {CountsEntity.Row}"),
            maxPerPage: SmallJobPage, cancellationToken: cancellationToken);
        await foreach (var page in whole.AsPages(pageSizeHint: SmallJobPage).WithCancellation(cancellationToken))
        {
            if (page.ContinuationToken is not null) break;
            foreach (var entity in page.Values.OrderBy(e => e.RowKey, StringComparer.Ordinal))
                yield return ToRecord(entity);
            yield break;
        }
        var partitions = ItemPartitions.All(jobId).Select(partition => _items.QueryAsync<ItemEntity>(
            TableClient.CreateQueryFilter($"PartitionKey eq {partition} and RowKey ne {CountsEntity.Row}"), cancellationToken: cancellationToken)
            .GetAsyncEnumerator(cancellationToken)).ToList();
        try
        {
            var next = new PriorityQueue<IAsyncEnumerator<ItemEntity>, string>(StringComparer.Ordinal);
            var first = await Task.WhenAll(partitions.Select(p => p.MoveNextAsync().AsTask()));
            for (int i = 0; i < partitions.Count; i++)
                if (first[i]) next.Enqueue(partitions[i], partitions[i].Current.RowKey);
            while (next.TryDequeue(out var partition, out _))
            {
                yield return ToRecord(partition.Current);
                if (await partition.MoveNextAsync()) next.Enqueue(partition, partition.Current.RowKey);
            }
        }
        finally
        {
            foreach (var p in partitions) await p.DisposeAsync();
        }
    }

    /// <summary>The most recently created jobs first (up to <paramref name="max"/>).</summary>
    public async Task<IReadOnlyList<JobRecord>> ListJobsAsync(int max = 50, CancellationToken cancellationToken = default)
    {
        await EnsureTablesAsync(cancellationToken);
        var jobs = new List<JobEntity>();
        await foreach (var job in _jobs.QueryAsync<JobEntity>(cancellationToken: cancellationToken))
            jobs.Add(job);
        var records = new List<JobRecord>();
        foreach (var job in jobs.OrderByDescending(j => j.CreatedAt).Take(max))
            records.Add((await GetJobAsync(job.PartitionKey, cancellationToken))!);
        return records;
    }

    // ---- item transitions (workers) -------------------------------------------------------------------------------

    /// <summary>Before rendering: marks the item rendering (one more attempt), or says why not to render.</summary>
    public async Task<ItemStart> StartItemAsync(string jobId, string itemId, string workerId, CancellationToken cancellationToken = default)
    {
        await EnsureTablesAsync(cancellationToken);
        var job = await ReadJobSharedAsync(jobId, cancellationToken);
        if (!job.HasValue) return new ItemStart(ItemStartDecision.UnknownItem, null, null);
        if (job.Value!.CancelRequested)
        {
            var cancelled = await CancelItemAsync(jobId, itemId, cancellationToken);
            if (cancelled.Item is null) return new ItemStart(ItemStartDecision.UnknownItem, null, null);
            return new ItemStart(cancelled.Applied ? ItemStartDecision.Cancelled : ItemStartDecision.AlreadyFinished,
                cancelled.Item, cancelled.EndedJob);
        }

        var decision = ItemStartDecision.Render;
        var transition = await TransitionAsync(jobId, itemId, (item, counts, now) =>
        {
            if (ItemStates.IsFinished(item.State))
            {
                decision = ItemStartDecision.AlreadyFinished;
                return false;
            }
            decision = ItemStartDecision.Render;
            counts.Move(item.State, ItemStates.Rendering); // queued → rendering; rendering again after a lost lock
            counts.FirstStartedAt ??= now;
            item.State = ItemStates.Rendering;
            item.Attempts++;
            item.WorkerId = workerId;
            item.StartedAt = now;
            return true;
        }, cancellationToken);
        return transition.Item is null
            ? new ItemStart(ItemStartDecision.UnknownItem, null, null)
            : new ItemStart(decision, transition.Item, transition.EndedJob);
    }

    /// <summary>
    /// The job row, for checks that only read it: calls that overlap in time (a worker admitting its batch) share one
    /// request. A read that joins one already in flight may miss a change made a moment before it was called, which
    /// is no worse than the change arriving a moment later.
    /// </summary>
    private Task<NullableResponse<JobEntity>> ReadJobSharedAsync(string jobId, CancellationToken cancellationToken)
    {
        while (true)
        {
            if (_jobReads.TryGetValue(jobId, out var inFlight)) return inFlight.WaitAsync(cancellationToken);
            var read = new TaskCompletionSource<NullableResponse<JobEntity>>(TaskCreationOptions.RunContinuationsAsynchronously);
            if (!_jobReads.TryAdd(jobId, read.Task)) continue;
            _ = ReadAsync(read);
            return read.Task.WaitAsync(cancellationToken);
        }

        async Task ReadAsync(TaskCompletionSource<NullableResponse<JobEntity>> read)
        {
            try
            {
                read.SetResult(await _jobs.GetEntityIfExistsAsync<JobEntity>(jobId, JobEntity.Row, cancellationToken: CancellationToken.None));
            }
            catch (Exception e)
            {
                read.SetException(e);
            }
            finally
            {
                _jobReads.TryRemove(new KeyValuePair<string, Task<NullableResponse<JobEntity>>>(jobId, read.Task));
            }
        }
    }

    /// <summary>Rendered and written: the item is done with its output blob names and timings (milliseconds by stage).</summary>
    public Task<ItemTransition> CompleteItemAsync(string jobId, string itemId, IReadOnlyList<string> outputs,
        IReadOnlyDictionary<string, double> timingsMs, CancellationToken cancellationToken = default) =>
        FinishAsync(jobId, itemId, ItemStates.Done, null, item =>
        {
            item.OutputsJson = JsonSerializer.Serialize(outputs, Json);
            item.TimingsJson = JsonSerializer.Serialize(timingsMs, Json);
            item.LastError = null;
        }, cancellationToken);

    /// <summary>A failure that will not go away on retry: the item is failed with the error.</summary>
    public Task<ItemTransition> FailItemAsync(string jobId, string itemId, string error, CancellationToken cancellationToken = default) =>
        FinishAsync(jobId, itemId, ItemStates.Failed, error, null, cancellationToken);

    /// <summary>The task went to the dead-letter queue: the item is dead-lettered with the reason.</summary>
    public Task<ItemTransition> DeadLetterItemAsync(string jobId, string itemId, string reason, CancellationToken cancellationToken = default) =>
        FinishAsync(jobId, itemId, ItemStates.DeadLettered, reason, null, cancellationToken);

    public Task<ItemTransition> CancelItemAsync(string jobId, string itemId, CancellationToken cancellationToken = default) =>
        FinishAsync(jobId, itemId, ItemStates.Cancelled, null, null, cancellationToken);

    /// <summary>A transient failure (the task is abandoned for redelivery): back to queued, the error kept.</summary>
    public Task<ItemTransition> ReleaseItemAsync(string jobId, string itemId, string error, CancellationToken cancellationToken = default) =>
        TransitionAsync(jobId, itemId, (item, counts, _) =>
        {
            if (ItemStates.IsFinished(item.State)) return false;
            counts.Move(item.State, ItemStates.Queued);
            item.State = ItemStates.Queued;
            item.LastError = error;
            item.WorkerId = null;
            return true;
        }, cancellationToken);

    private Task<ItemTransition> FinishAsync(string jobId, string itemId, string state, string? error, Action<ItemEntity>? update,
        CancellationToken cancellationToken) =>
        TransitionAsync(jobId, itemId, (item, counts, now) =>
        {
            if (ItemStates.IsFinished(item.State)) return false; // finished items never change: redeliveries are no-ops
            counts.Move(item.State, state);
            item.State = state;
            item.FinishedAt = now;
            if (error is not null) item.LastError = error;
            update?.Invoke(item);
            return true;
        }, cancellationToken);

    /// <summary>
    /// Read item and counts, decide, write both in one ETag-guarded transaction; retry on conflict. When this process
    /// wrote both rows last (a worker's rendering → done after its own queued → rendering), the first attempt uses
    /// them as written instead of reading them again: the ETags guard them as they guard a read, and a 412 sends the
    /// transition back to reading.
    /// </summary>
    private async Task<ItemTransition> TransitionAsync(string jobId, string itemId,
        Func<ItemEntity, CountsEntity, DateTimeOffset, bool> change, CancellationToken cancellationToken)
    {
        await EnsureTablesAsync(cancellationToken);
        var partition = ItemPartitions.For(jobId, itemId);
        var useWritten = true;
        for (var attempt = 0; ; attempt++)
        {
            var writtenCounts = useWritten ? _writtenCounts.GetValueOrDefault(partition) : null;
            var writtenItem = writtenCounts is null ? null : _writtenItems.GetValueOrDefault((partition, itemId));
            var fromWritten = writtenCounts is not null;
            ItemEntity entity;
            CountsEntity counts;
            if (writtenItem is not null)
                (entity, counts) = (writtenItem.Copy(), writtenCounts!.Copy());
            else
            {
                // The counts row as last written here serves too (a partition's later items), the item is read.
                var itemRead = _items.GetEntityIfExistsAsync<ItemEntity>(partition, itemId, cancellationToken: cancellationToken);
                var countsRead = fromWritten ? null
                    : _items.GetEntityIfExistsAsync<CountsEntity>(partition, CountsEntity.Row, cancellationToken: cancellationToken);
                var item = await itemRead;
                var countsRow = countsRead is null ? null : await countsRead;
                if (!item.HasValue) return new ItemTransition(false, null, null);
                if (countsRow is { HasValue: false })
                {
                    // The partition's first transition: its counts row starts at zero (two workers may race to add it).
                    await AddIgnoringConflictAsync(_items, new CountsEntity { PartitionKey = partition }, cancellationToken);
                    continue;
                }
                (entity, counts) = (item.Value!, countsRow?.Value ?? writtenCounts!.Copy());
            }
            if (!change(entity, counts, _time.GetUtcNow()))
            {
                if (fromWritten) { useWritten = false; continue; } // decide on what is stored, not on our copy
                return new ItemTransition(false, ToRecord(entity), null);
            }
            try
            {
                var written = await _items.SubmitTransactionAsync(
                [
                    new TableTransactionAction(TableTransactionActionType.UpdateReplace, entity, entity.ETag),
                    new TableTransactionAction(TableTransactionActionType.UpdateReplace, counts, counts.ETag),
                ], cancellationToken);
                RememberWritten(partition, itemId, entity, counts, written.Value);
            }
            catch (TableTransactionFailedException e) when (e.Status == 412 && attempt < MaxConflictRetries)
            {
                _writtenItems.TryRemove((partition, itemId), out _);
                _writtenCounts.TryRemove(partition, out _);
                if (fromWritten) { useWritten = false; continue; }
                await Task.Delay(TimeSpan.FromMilliseconds(Random.Shared.Next(5, 20 + 5 * Math.Min(attempt, 20))), cancellationToken);
                continue;
            }
            BatchRenderTelemetry.ItemTransitions.Add(1, new KeyValuePair<string, object?>("state", entity.State));
            // Only a change that finishes an item can end the job, and only one that finishes its partition (while the
            // partition's total is not recorded yet, any finished item with nothing rendering there may be the last);
            // whether it did, the other partitions say (TryEndJobAsync reads them all).
            var mayHaveEnded = ItemStates.IsFinished(entity.State) && counts.Rendering == 0
                               && (counts.Total == 0 || counts.Finished >= counts.Total);
            var ended = mayHaveEnded ? await TryEndJobAsync(jobId, cancellationToken) : null;
            return new ItemTransition(true, ToRecord(entity), ended);
        }
    }

    /// <summary>Keeps the rows just written (with their new ETags) for the item's next transition; a finished item's
    /// row never changes again, so it leaves. Bounded: items a crashed attempt left behind are dropped with the rest.</summary>
    private void RememberWritten(string partition, string itemId, ItemEntity entity, CountsEntity counts, IReadOnlyList<Response> responses)
    {
        if (responses.Count != 2 || responses[0].Headers.ETag is not { } itemETag || responses[1].Headers.ETag is not { } countsETag)
            return;
        if (_writtenItems.Count >= MaxWrittenRows) _writtenItems.Clear();
        if (_writtenCounts.Count >= MaxWrittenRows) _writtenCounts.Clear();
        var counted = counts.Copy();
        counted.ETag = countsETag;
        _writtenCounts[partition] = counted;
        if (ItemStates.IsFinished(entity.State))
        {
            _writtenItems.TryRemove((partition, itemId), out _);
            return;
        }
        var item = entity.Copy();
        item.ETag = itemETag;
        _writtenItems[(partition, itemId)] = item;
    }

    // ---- job end and cancellation ---------------------------------------------------------------------------------

    /// <summary>
    /// Ends the job if all its items have finished and it has not ended yet. Returns the ended job to exactly one
    /// caller (the ETag decides), null to everyone else. Safe to call again after a crash between the last item and
    /// the job row.
    /// </summary>
    public async Task<JobRecord?> TryEndJobAsync(string jobId, CancellationToken cancellationToken = default)
    {
        await EnsureTablesAsync(cancellationToken);
        for (var attempt = 0; attempt < MaxConflictRetries; attempt++)
        {
            var jobRead = _jobs.GetEntityIfExistsAsync<JobEntity>(jobId, JobEntity.Row, cancellationToken: cancellationToken);
            var countsRead = ReadCountsAsync(jobId, cancellationToken);
            var (jobRow, counts) = (await jobRead, await countsRead);
            if (!jobRow.HasValue) return null;
            var job = jobRow.Value!;
            var c = CountsEntity.Sum(job.TotalItems, counts);
            if (JobStatuses.IsEnded(job.Status) || !c.AllFinished) return null;
            job.Status = job.CancelRequested && c.Cancelled > 0 ? JobStatuses.Cancelled
                : c.Failed + c.DeadLettered > 0 ? JobStatuses.Failed
                : JobStatuses.Done;
            job.FinishedAt = _time.GetUtcNow();
            try
            {
                await _jobs.UpdateEntityAsync(job, job.ETag, TableUpdateMode.Replace, cancellationToken);
            }
            catch (RequestFailedException e) when (e.Status == 412)
            {
                continue; // someone else changed the job (ended it, or set the cancel flag): look again
            }
            BatchRenderTelemetry.JobsEnded.Add(1, new KeyValuePair<string, object?>("status", job.Status));
            _logger.LogInformation("Job {JobId} ended {Status}: {Done} done, {Failed} failed, {DeadLettered} dead-lettered, {Cancelled} cancelled",
                jobId, job.Status, c.Done, c.Failed, c.DeadLettered, c.Cancelled);
            return ToRecord(job, counts);
        }
        throw new InvalidOperationException($"Job '{jobId}' could not be ended: too many concurrent updates.");
    }

    /// <summary>
    /// Sets the job's cancel flag and cancels its queued items (rendering items finish; their tasks, and the queued
    /// ones still on the queue, are completed without rendering). Returns the job as it is now (null for an unknown
    /// job) and, when this call ended it, the ended job.
    /// </summary>
    public async Task<(JobRecord? Job, JobRecord? EndedJob)> CancelJobAsync(string jobId, CancellationToken cancellationToken = default)
    {
        await UpdateJobAsync(jobId, job =>
        {
            if (job.CancelRequested || JobStatuses.IsEnded(job.Status)) return false;
            job.CancelRequested = true;
            return true;
        }, cancellationToken);
        if (await GetJobAsync(jobId, cancellationToken) is not { } current) return (null, null);
        if (JobStatuses.IsEnded(current.Status)) return (current, null);

        var (from, to) = ItemPartitions.Range(jobId);
        var filter = TableClient.CreateQueryFilter($"PartitionKey ge {from} and PartitionKey lt {to} and State eq {ItemStates.Queued}");
        var queued = new List<string>();
        await foreach (var item in _items.QueryAsync<ItemEntity>(filter, select: ["RowKey"], cancellationToken: cancellationToken))
            queued.Add(item.RowKey);
        JobRecord? ended = null;
        // One item per transaction keeps this correct under concurrent workers; cancelling is rare.
        await Parallel.ForEachAsync(queued, new ParallelOptions { MaxDegreeOfParallelism = 4, CancellationToken = cancellationToken },
            async (itemId, ct) =>
            {
                var transition = await TransitionAsync(jobId, itemId, (item, counts, now) =>
                {
                    if (item.State != ItemStates.Queued) return false;
                    counts.Move(item.State, ItemStates.Cancelled);
                    item.State = ItemStates.Cancelled;
                    item.FinishedAt = now;
                    return true;
                }, ct);
                if (transition.EndedJob is not null) ended = transition.EndedJob;
            });
        ended ??= await TryEndJobAsync(jobId, cancellationToken);
        return (await GetJobAsync(jobId, cancellationToken), ended);
    }

    /// <summary>Read-modify-write of the job row under its ETag; false when <paramref name="change"/> declined or there is no job.</summary>
    private async Task<bool> UpdateJobAsync(string jobId, Func<JobEntity, bool> change, CancellationToken cancellationToken)
    {
        await EnsureTablesAsync(cancellationToken);
        for (var attempt = 0; ; attempt++)
        {
            var read = await _jobs.GetEntityIfExistsAsync<JobEntity>(jobId, JobEntity.Row, cancellationToken: cancellationToken);
            if (!read.HasValue) return false;
            var job = read.Value!;
            if (!change(job)) return false;
            try
            {
                await _jobs.UpdateEntityAsync(job, job.ETag, TableUpdateMode.Replace, cancellationToken);
                return true;
            }
            catch (RequestFailedException e) when (e.Status == 412 && attempt < MaxConflictRetries)
            {
            }
        }
    }

    private static async Task AddIgnoringConflictAsync(TableClient table, ITableEntity entity, CancellationToken cancellationToken)
    {
        try
        {
            await table.AddEntityAsync(entity, cancellationToken);
        }
        catch (RequestFailedException e) when (e.Status == 409)
        {
        }
    }

    // ---- mapping --------------------------------------------------------------------------------------------------

    private static JobRecord ToRecord(JobEntity job, IReadOnlyList<CountsEntity> counts)
    {
        var c = CountsEntity.Sum(job.TotalItems, counts);
        var status = JobStatuses.IsEnded(job.Status) ? job.Status
            : c.Rendering > 0 || c.Finished > 0 ? JobStatuses.Running
            : JobStatuses.Queued;
        return new JobRecord(job.PartitionKey, status, c, job.CreatedAt, counts.Min(r => r.FirstStartedAt), job.FinishedAt, job.SourceManifest,
            job.ManifestSha256, job.CancelRequested, job.IngestCompleted,
            JsonSerializer.Deserialize<string[]>(job.WarningsJson, Json) ?? []);
    }

    private static ItemRecord ToRecord(ItemEntity item) => new(
        ItemPartitions.JobIdOf(item.PartitionKey), item.RowKey, item.State, item.Kind, item.Prompt, item.Seed, item.Width, item.Height, item.MessageId,
        item.Attempts, item.LastError,
        JsonSerializer.Deserialize<string[]>(item.OutputsJson, Json) ?? [],
        item.WorkerId, item.StartedAt, item.FinishedAt,
        JsonSerializer.Deserialize<Dictionary<string, double>>(item.TimingsJson, Json) ?? []);
}
