using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace BatchRender.Core.State;

/// <summary>Runs when a job ends (once per job): the report and gallery writer is one.</summary>
public interface IJobEndedHandler
{
    Task OnJobEndedAsync(JobRecord job, CancellationToken cancellationToken);
}

/// <summary>
/// What workers, ingestion and the status/cancel endpoints call: the state store's transitions, plus the job-ended
/// handlers for the one caller whose transition ended the job. A crash between ending a job and its handlers is
/// repaired by <see cref="GetStatusAsync"/>, which finishes what it finds half done.
/// </summary>
public sealed class JobTracker(JobStateStore store, IEnumerable<IJobEndedHandler> handlers, ILogger<JobTracker>? logger = null)
{
    private readonly IReadOnlyList<IJobEndedHandler> _handlers = handlers.ToList();
    private readonly ILogger _logger = logger ?? NullLogger<JobTracker>.Instance;

    public JobStateStore Store => store;

    public async Task<ItemStart> StartItemAsync(string jobId, string itemId, string workerId, CancellationToken cancellationToken = default)
    {
        var start = await store.StartItemAsync(jobId, itemId, workerId, cancellationToken);
        await HandleEndedAsync(start.EndedJob, cancellationToken);
        return start;
    }

    public Task<ItemTransition> CompleteItemAsync(string jobId, string itemId, IReadOnlyList<string> outputs,
        IReadOnlyDictionary<string, double> timingsMs, CancellationToken cancellationToken = default) =>
        Handle(store.CompleteItemAsync(jobId, itemId, outputs, timingsMs, cancellationToken), cancellationToken);

    public Task<ItemTransition> FailItemAsync(string jobId, string itemId, string error, CancellationToken cancellationToken = default) =>
        Handle(store.FailItemAsync(jobId, itemId, error, cancellationToken), cancellationToken);

    public Task<ItemTransition> DeadLetterItemAsync(string jobId, string itemId, string reason, CancellationToken cancellationToken = default) =>
        Handle(store.DeadLetterItemAsync(jobId, itemId, reason, cancellationToken), cancellationToken);

    public Task<ItemTransition> ReleaseItemAsync(string jobId, string itemId, string error, CancellationToken cancellationToken = default) =>
        store.ReleaseItemAsync(jobId, itemId, error, cancellationToken);

    /// <summary>Ingest is over (see <see cref="JobStateStore.MarkIngestCompletedAsync"/>); a job whose items all finished
    /// meanwhile ends here.</summary>
    public async Task MarkIngestCompletedAsync(string jobId, ItemPartitionTotals totals, CancellationToken cancellationToken = default) =>
        await HandleEndedAsync(await store.MarkIngestCompletedAsync(jobId, totals, cancellationToken), cancellationToken);

    /// <summary>Cancels a job (see <see cref="JobStateStore.CancelJobAsync"/>); null for an unknown job.</summary>
    public async Task<JobRecord?> CancelJobAsync(string jobId, CancellationToken cancellationToken = default)
    {
        var (job, ended) = await store.CancelJobAsync(jobId, cancellationToken);
        await HandleEndedAsync(ended, cancellationToken);
        return ended ?? job;
    }

    /// <summary>The job as it is now; null for an unknown job. Ends a job whose items all finished if nobody did.</summary>
    public async Task<JobRecord?> GetStatusAsync(string jobId, CancellationToken cancellationToken = default)
    {
        var job = await store.GetJobAsync(jobId, cancellationToken);
        if (job is { Counts.AllFinished: true } && !JobStatuses.IsEnded(job.Status))
        {
            var ended = await store.TryEndJobAsync(jobId, cancellationToken);
            await HandleEndedAsync(ended, cancellationToken);
            job = ended ?? await store.GetJobAsync(jobId, cancellationToken);
        }
        return job;
    }

    private async Task<ItemTransition> Handle(Task<ItemTransition> transition, CancellationToken cancellationToken)
    {
        var result = await transition;
        await HandleEndedAsync(result.EndedJob, cancellationToken);
        return result;
    }

    private async Task HandleEndedAsync(JobRecord? ended, CancellationToken cancellationToken)
    {
        if (ended is null) return;
        foreach (var handler in _handlers)
        {
            try
            {
                await handler.OnJobEndedAsync(ended, cancellationToken);
            }
            catch (Exception e) when (e is not OperationCanceledException)
            {
                // The item transition stands; the job ended. A handler failure is logged, not turned into a redelivery.
                _logger.LogError(e, "Job {JobId} ended but {Handler} failed", ended.JobId, handler.GetType().Name);
            }
        }
    }
}
