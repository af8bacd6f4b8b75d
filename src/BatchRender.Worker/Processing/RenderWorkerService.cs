using System.Diagnostics;
using BatchRender.Core.Configuration;
using BatchRender.Core.Messages;
using BatchRender.Core.State;
using BatchRender.Core.Storage;
using BatchRender.Core.Telemetry;
using BatchRender.Core.Transport;
using BatchRender.Worker.Health;
using BatchRender.Worker.Rendering;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace BatchRender.Worker.Processing;

/// <summary>
/// The worker loop: receive a batch of locked tasks → admit each (parse, check, item state) → render compatible tasks
/// together → write outputs and sidecars → mark items done → complete the messages. Locks are renewed in the
/// background until each task is settled. The job tracker runs the job-ended handlers (report.json and the gallery)
/// for the transition that finishes a job.
/// <list type="bullet">
/// <item>Never succeeds (unparseable, invalid parameters, unknown model or item): dead-lettered with a reason, item dead-lettered.</item>
/// <item>Might succeed later (storage, model or network errors): abandoned for redelivery, item back to queued with the
/// error; on its last allowed delivery (Transport:MaxDeliveryCount) dead-lettered as MaxDeliveryCountExceeded.</item>
/// <item>Already finished (a redelivery) or its job cancelled: completed without rendering.</item>
/// </list>
/// The next batch is received and admitted while the current one renders, and a batch's writes run behind the next
/// batches' renders (up to Worker:BatchesWriting of them), so the model waits on neither the queue nor storage. On stop
/// (SIGTERM) it receives no more, hands a batch not yet started back to the queue, keeps working on the batches in hand
/// for up to Worker:DrainTimeout, then abandons what is left so another worker picks it up at once.
/// </summary>
public sealed class RenderWorkerService(
    IRenderTaskReceiver receiver,
    IRenderEngine engine,
    JobTracker state,
    RenderOutputWriter outputs,
    WorkerReadiness readiness,
    WorkerIdentity identity,
    IOptions<WorkerOptions> workerOptions,
    IOptions<TransportOptions> transportOptions,
    ILogger<RenderWorkerService> logger) : BackgroundService
{
    /// <summary>Dead-letter reason for a task whose job or item this deployment has no record of.</summary>
    public const string UnknownItemReason = "UnknownItem";

    private static readonly TimeSpan ReceiveWait = TimeSpan.FromSeconds(5);
    private readonly WorkerOptions _options = workerOptions.Value;
    private readonly TransportOptions _transport = transportOptions.Value;

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        // Work in hand outlives the stop signal by the drain timeout, then it is abandoned.
        using var drain = new CancellationTokenSource();
        await using var _ = stoppingToken.Register(() =>
        {
            logger.LogInformation("Worker {WorkerId} stopping: no more receives; draining for up to {Drain}", identity, _options.DrainTimeout);
            drain.CancelAfter(_options.DrainTimeout);
        });
        logger.LogInformation("Worker {WorkerId} receiving from {Queue} ({Transport}), batches of {BatchSize}",
            identity, _transport.QueueName, _transport.Kind, _options.BatchSize);

        // Three stages overlap: the next batch is received and admitted while the current one renders, and a rendered
        // batch's outputs are written while the next ones render (up to Worker:BatchesWriting of them; 0 runs each batch
        // to the end before receiving the next). The model then waits on neither the queue nor storage.
        var overlap = _options.BatchesWriting > 0;
        var writing = new List<Task>();
        var failures = new ReceiveFailures();
        var next = NextBatchAsync(failures, stoppingToken, drain.Token);
        while (await next is { } batch)
        {
            // Back-pressure: storage slower than the model must not pile up rendered batches under renewed locks.
            writing.RemoveAll(t => t.IsCompleted);
            while (writing.Count > _options.BatchesWriting)
            {
                await Task.WhenAny(writing);
                writing.RemoveAll(t => t.IsCompleted);
            }
            if (overlap) next = NextBatchAsync(failures, stoppingToken, drain.Token);
            try
            {
                // A batch not yet started when the worker is told to stop goes straight back to the queue for another worker.
                var handOver = stoppingToken.IsCancellationRequested;
                writing.Add(LogFailureAsync(await RenderBatchAsync(batch, handOver, drain.Token), batch.Work.Count));
            }
            catch (Exception e)
            {
                // Every task of the batch has been settled or abandoned by now; one bad batch must not stop the worker.
                logger.LogError(e, "Processing a batch of {Count} task(s) failed", batch.Work.Count);
            }
            if (!overlap)
            {
                await Task.WhenAll(writing);
                next = NextBatchAsync(failures, stoppingToken, drain.Token);
            }
        }
        await Task.WhenAll(writing);
        logger.LogInformation("Worker {WorkerId} stopped", identity);
    }

    /// <summary>Consecutive receive failures, for the back-off (shared by the successive prefetches).</summary>
    private sealed class ReceiveFailures
    {
        public int Count;
    }

    /// <summary>Receives the next non-empty batch and admits it (locks renewed from here on); null once stopping.</summary>
    private async Task<AdmittedBatch?> NextBatchAsync(ReceiveFailures failures, CancellationToken stoppingToken, CancellationToken drain)
    {
        while (!stoppingToken.IsCancellationRequested)
        {
            IReadOnlyList<IReceivedTask> batch;
            try
            {
                batch = await receiver.ReceiveAsync(_options.BatchSize, ReceiveWait, stoppingToken);
                readiness.QueueReachable = true;
                failures.Count = 0;
            }
            catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
            {
                break;
            }
            catch (Exception e)
            {
                readiness.QueueReachable = false;
                var pause = TimeSpan.FromSeconds(Math.Min(30, Math.Pow(2, Math.Min(++failures.Count, 5))));
                logger.LogError(e, "Receiving tasks failed ({Failures} in a row); trying again in {Pause}", failures.Count, pause);
                try { await Task.Delay(pause, stoppingToken); } catch (OperationCanceledException) { break; }
                continue;
            }
            if (batch.Count == 0) continue;
            try
            {
                return await AdmitBatchAsync(batch, drain);
            }
            catch (Exception e)
            {
                logger.LogError(e, "Admitting a batch of {Count} task(s) failed", batch.Count);
            }
        }
        return null;
    }

    private async Task LogFailureAsync(Task writes, int count)
    {
        try { await writes; }
        catch (Exception e) { logger.LogError(e, "Writing a batch of {Count} task(s) failed", count); }
    }

    /// <summary>A received batch whose tasks have been admitted (the rest already settled), with its lock renewal.</summary>
    private sealed record AdmittedBatch(IReadOnlyList<WorkItem> Work, IReadOnlyList<WorkItem> Admitted, CancellationTokenSource Renewing, Task Renewal);

    /// <summary>Starts renewing the batch's locks and admits each task (parse, checks, item state): those that should not
    /// render are settled here.</summary>
    private async Task<AdmittedBatch> AdmitBatchAsync(IReadOnlyList<IReceivedTask> received, CancellationToken drain)
    {
        var work = received.Select(r => new WorkItem(r, StartTaskSpan(r))).ToList();
        var renewing = new CancellationTokenSource();
        var batch = new AdmittedBatch(work, [], renewing, RenewLocksAsync(work, renewing.Token));
        try
        {
            // Each task's state round trips overlap the others' (a worker's own overhead is mostly storage latency).
            var admissions = await Task.WhenAll(work.Select(async item =>
            {
                if (!drain.IsCancellationRequested) return await AdmitAsync(item);
                await AbandonAsync(item, "the worker shut down before rendering it");
                return false;
            }));
            return batch with { Admitted = work.Where((_, i) => admissions[i]).ToList() };
        }
        catch
        {
            await CloseBatchAsync(batch, []);
            throw;
        }
    }

    /// <summary>
    /// Renders an admitted batch group by group (or, with <paramref name="handOver"/>, releases it unrendered), and
    /// returns as soon as the model is free for the next one, with the task that writes the batch's outputs, records its
    /// items and settles its messages (every task of the batch is settled when that completes).
    /// </summary>
    private async Task<Task> RenderBatchAsync(AdmittedBatch batch, bool handOver, CancellationToken drain)
    {
        var writes = new List<Task>();
        try
        {
            foreach (var group in batch.Admitted.GroupBy(w => RenderGroupKey.For(w.Message!)))
            {
                if (handOver || drain.IsCancellationRequested)
                {
                    foreach (var item in group) await ReleaseAsync(item, "the worker shut down before rendering it", shutdown: true);
                    continue;
                }
                writes.Add(await RenderGroupAsync(group.ToList(), drain));
            }
        }
        catch
        {
            await CloseBatchAsync(batch, writes);
            throw;
        }
        return CloseBatchAsync(batch, writes);
    }

    /// <summary>Waits for the batch's writes, stops renewing its locks and abandons whatever is still unsettled.</summary>
    private async Task CloseBatchAsync(AdmittedBatch batch, IReadOnlyList<Task> writes)
    {
        try
        {
            await Task.WhenAll(writes);
        }
        finally
        {
            await batch.Renewing.CancelAsync();
            await batch.Renewal;
            batch.Renewing.Dispose();
            foreach (var item in batch.Work.Where(w => !Volatile.Read(ref w.Settled))) await AbandonAsync(item, "not settled");
            foreach (var item in batch.Work) item.Span?.Dispose();
        }
    }

    /// <summary>True when the task should be rendered; otherwise it has been settled here.</summary>
    private async Task<bool> AdmitAsync(WorkItem item)
    {
        var received = item.Received;
        var message = OutgoingTasks.TryParse(received.Body, out var parseError);
        if (message is null)
        {
            received.Properties.TryGetValue(TaskProperties.JobId, out var jobId);
            received.Properties.TryGetValue(TaskProperties.ItemId, out var itemId);
            await DeadLetterAsync(item, DeadLetterReasons.Unparseable, parseError!, jobId, itemId);
            return false;
        }
        item.Message = message;
        item.Span?.SetTag("batchrender.job_id", message.JobId).SetTag("batchrender.item_id", message.ItemId)
            .SetTag("batchrender.model", message.Model).SetTag("batchrender.kind", message.Kind);

        if (RenderTaskChecks.Problem(message) is { } problem)
        {
            await DeadLetterAsync(item, DeadLetterReasons.InvalidParameters, problem, message.JobId, message.ItemId);
            return false;
        }

        ItemStart start;
        try
        {
            // Not cancelled by the drain: a state change cut off mid-flight may have landed, leaving the item rendering.
            start = await state.StartItemAsync(message.JobId, message.ItemId, identity.Id, CancellationToken.None);
        }
        catch (Exception e)
        {
            logger.LogWarning(e, "Reading the state of {JobId}/{ItemId} failed; abandoning the task for redelivery", message.JobId, message.ItemId);
            await AbandonAsync(item, e.Message);
            return false;
        }
        switch (start.Decision)
        {
            case ItemStartDecision.Render:
                return true;
            case ItemStartDecision.AlreadyFinished:
                logger.LogInformation("{JobId}/{ItemId} is already {State} (a redelivery); completing without rendering",
                    message.JobId, message.ItemId, start.Item?.State);
                await CompleteAsync(item, "already-finished");
                return false;
            case ItemStartDecision.Cancelled:
                logger.LogInformation("{JobId}/{ItemId}: job cancelled; completing without rendering", message.JobId, message.ItemId);
                await CompleteAsync(item, "cancelled");
                return false;
            default:
                await DeadLetterAsync(item, UnknownItemReason,
                    $"no job '{message.JobId}' with item '{message.ItemId}' is recorded in this deployment's state (ingested elsewhere?)",
                    jobId: null, itemId: null);
                return false;
        }
    }

    /// <summary>Renders a group in one model pass; returns the task writing and settling its tasks' outputs.</summary>
    private async Task<Task> RenderGroupAsync(IReadOnlyList<WorkItem> group, CancellationToken drain)
    {
        var messages = group.Select(w => w.Message!).ToList();
        var key = RenderGroupKey.For(messages[0]);
        using var span = BatchRenderTelemetry.ActivitySource.StartActivity("render group");
        span?.SetTag("batchrender.model", key.Model).SetTag("batchrender.group_size", group.Count);
        logger.LogInformation("Rendering {Count} task(s) together: {Model} {Kind} {Width}x{Height}, {Steps} steps {Sampler}, {Quantization}",
            group.Count, key.Model, key.Kind, key.Width, key.Height, key.Steps, key.Sampler, key.Quantization);

        IReadOnlyList<TaskRenderOutcome> outcomes;
        var started = Stopwatch.GetTimestamp();
        using var deadline = CancellationTokenSource.CreateLinkedTokenSource(drain);
        deadline.CancelAfter(_options.RenderTimeout);
        try
        {
            outcomes = await engine.RenderAsync(messages, deadline.Token);
            if (outcomes.Count != group.Count)
                throw new InvalidOperationException($"the render engine returned {outcomes.Count} outcome(s) for {group.Count} task(s)");
        }
        catch (Exception e)
        {
            var shutdown = drain.IsCancellationRequested && e is OperationCanceledException;
            var error = shutdown ? "the worker shut down during the render"
                : e is OperationCanceledException && deadline.IsCancellationRequested
                    ? $"the render took longer than Worker:RenderTimeout ({_options.RenderTimeout})"
                    : $"render failed: {e.Message}";
            if (!shutdown) logger.LogError(e, "Rendering a group of {Count} failed: {Error}", group.Count, error);
            foreach (var item in group)
                await ReleaseAsync(item, error, shutdown);
            return Task.CompletedTask;
        }
        var renderMs = Stopwatch.GetElapsedTime(started).TotalMilliseconds;

        // The outputs, sidecars and state of the group's tasks are written concurrently: each task's writes are
        // independent, and waiting for them one after another would add their latencies to every pass.
        return Task.WhenAll(group.Select((item, i) => FinishAsync(item, outcomes[i], renderMs, drain)));
    }

    /// <summary>Writes one rendered task's outputs and sidecar, marks its item done and completes it (or settles a failure).</summary>
    private async Task FinishAsync(WorkItem item, TaskRenderOutcome outcome, double groupRenderMs, CancellationToken drain)
    {
        // The writes outlive the render group's span (they run behind the next render): trace them under the task's own.
        Activity.Current = item.Span;
        var message = item.Message!;
        if (outcome.Failure is { } failure)
        {
            await DeadLetterAsync(item, failure.Reason, failure.Description, message.JobId, message.ItemId);
            return;
        }
        try
        {
            var timings = new Dictionary<string, double>(outcome.Output!.TimingsMs) { ["groupRender"] = groupRenderMs };
            var writeStarted = Stopwatch.GetTimestamp();
            var sidecar = await outputs.WriteAsync(message, outcome.Output with { TimingsMs = timings }, identity,
                item.Received.DeliveryCount, drain);
            timings["write"] = Stopwatch.GetElapsedTime(writeStarted).TotalMilliseconds;
            var blobs = sidecar.Outputs.Select(o => o.Blob).Append(BlobLayout.Sidecar(message.JobId, message.ItemId)).ToList();
            await state.CompleteItemAsync(message.JobId, message.ItemId, blobs, timings, CancellationToken.None);
            await CompleteAsync(item, "rendered");
        }
        catch (Exception e)
        {
            var shutdown = drain.IsCancellationRequested && e is OperationCanceledException;
            if (!shutdown) logger.LogWarning(e, "Writing {JobId}/{ItemId} failed", message.JobId, message.ItemId);
            await ReleaseAsync(item, shutdown ? "the worker shut down while writing outputs" : $"writing outputs failed: {e.Message}", shutdown);
        }
    }

    /// <summary>A transient failure: back to the queue, or to the dead-letter queue when this was the last allowed delivery.</summary>
    private async Task ReleaseAsync(WorkItem item, string error, bool shutdown)
    {
        var message = item.Message!;
        if (!shutdown && item.Received.DeliveryCount >= _transport.MaxDeliveryCount)
        {
            await DeadLetterAsync(item, DeadLetterReasons.MaxDeliveryCountExceeded,
                $"delivered {item.Received.DeliveryCount} times (Transport:MaxDeliveryCount = {_transport.MaxDeliveryCount}); last error: {error}",
                message.JobId, message.ItemId);
            return;
        }
        try
        {
            await state.ReleaseItemAsync(message.JobId, message.ItemId, error, CancellationToken.None);
        }
        catch (Exception e)
        {
            logger.LogWarning(e, "Recording the failure of {JobId}/{ItemId} failed", message.JobId, message.ItemId);
        }
        await AbandonAsync(item, error);
    }

    private async Task DeadLetterAsync(WorkItem item, string reason, string description, string? jobId, string? itemId)
    {
        logger.LogWarning("Dead-lettering task {MessageId} ({JobId}/{ItemId}): {Reason}: {Description}",
            item.Received.MessageId, jobId, itemId, reason, description);
        item.Span?.SetStatus(ActivityStatusCode.Error, reason).SetTag("batchrender.outcome", "dead-lettered");
        if (jobId is not null && itemId is not null)
        {
            try
            {
                await state.DeadLetterItemAsync(jobId, itemId, $"{reason}: {description}", CancellationToken.None);
            }
            catch (Exception e)
            {
                logger.LogWarning(e, "Recording {JobId}/{ItemId} as dead-lettered failed", jobId, itemId);
            }
        }
        await SettleAsync(item, "dead-letter", () => item.Received.DeadLetterAsync(reason, description, CancellationToken.None));
    }

    private Task CompleteAsync(WorkItem item, string outcome)
    {
        item.Span?.SetTag("batchrender.outcome", outcome);
        return SettleAsync(item, "complete", () => item.Received.CompleteAsync(CancellationToken.None));
    }

    private Task AbandonAsync(WorkItem item, string why)
    {
        item.Span?.SetTag("batchrender.outcome", "abandoned").SetTag("batchrender.error", why);
        logger.LogInformation("Abandoning task {MessageId} for redelivery: {Why}", item.Received.MessageId, why);
        return SettleAsync(item, "abandon", () => item.Received.AbandonAsync(CancellationToken.None));
    }

    private async Task SettleAsync(WorkItem item, string what, Func<Task> settle)
    {
        if (Interlocked.Exchange(ref item.Settled, true)) return; // first: the renewal loop leaves it alone from now on
        try
        {
            await settle();
        }
        catch (TaskLockLostException e)
        {
            // The task is (or will be) delivered again; item state and create-only outputs make that harmless.
            logger.LogWarning("Could not {What} task {MessageId}: {Message}", what, item.Received.MessageId, e.Message);
        }
        catch (Exception e)
        {
            logger.LogWarning(e, "Could not {What} task {MessageId}; it will be delivered again when its lock expires", what, item.Received.MessageId);
        }
    }

    /// <summary>Renews every unsettled task's lock at half the lock duration until <paramref name="cancellationToken"/> fires.</summary>
    private async Task RenewLocksAsync(IReadOnlyList<WorkItem> work, CancellationToken cancellationToken)
    {
        var interval = TimeSpan.FromTicks(Math.Max(_transport.LockDuration.Ticks / 2, TimeSpan.FromSeconds(1).Ticks));
        try
        {
            while (true)
            {
                await Task.Delay(interval, cancellationToken);
                await Task.WhenAll(work.Where(w => !Volatile.Read(ref w.Settled)).Select(async w =>
                {
                    try
                    {
                        await w.Received.RenewLockAsync(cancellationToken);
                    }
                    catch (Exception e) when (e is not OperationCanceledException)
                    {
                        if (!Volatile.Read(ref w.Settled)) logger.LogWarning("Renewing the lock of task {MessageId} failed: {Message}", w.Received.MessageId, e.Message);
                    }
                }));
            }
        }
        catch (OperationCanceledException)
        {
        }
    }

    /// <summary>A span per task, continuing the trace that enqueued it; detached from the loop's ambient activity.</summary>
    private static Activity? StartTaskSpan(IReceivedTask received)
    {
        var ambient = Activity.Current;
        var span = BatchRenderTelemetry.StartFromMessage("render task", received.Properties);
        span?.SetTag("messaging.message.id", received.MessageId).SetTag("messaging.delivery_count", received.DeliveryCount);
        Activity.Current = ambient;
        return span;
    }

    private sealed class WorkItem(IReceivedTask received, Activity? span)
    {
        public IReceivedTask Received { get; } = received;
        public Activity? Span { get; } = span;
        public RenderTaskMessage? Message { get; set; }
        public bool Settled;
    }
}
