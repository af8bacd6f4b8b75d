using BatchRender.Core.Ingestion;
using Microsoft.Azure.Functions.Worker;
using Microsoft.Extensions.Logging;

namespace BatchRender.Functions.Functions;

/// <summary>
/// Scheduled bulk jobs: every minute, start the jobs of the schedules (<c>schedules/{name}.json</c>, each with its own
/// CRON and time zone) whose occurrences are due. The runner claims each occurrence once, so a timer that fires twice
/// or two instances running at once start one job per occurrence.
/// </summary>
public sealed class RunSchedules(ScheduleRunner runner, ILogger<RunSchedules> logger)
{
    /// <summary>Every minute, on the minute (the finest granularity of a 5-field CRON).</summary>
    public const string EveryMinute = "0 * * * * *";

    [Function(nameof(RunSchedules))]
    public async Task RunAsync([TimerTrigger(EveryMinute)] TimerInfo timer, CancellationToken cancellationToken)
    {
        if (timer.IsPastDue) logger.LogInformation("The schedule timer is running late; due occurrences are caught up now");
        var started = await runner.RunDueAsync(cancellationToken);
        foreach (var start in started)
            logger.LogInformation("Schedule {Schedule} occurrence {Occurrence:u} → job {JobId}{Elsewhere}", start.Schedule, start.Occurrence,
                start.JobId, start.ClaimedElsewhere ? " (already started elsewhere)" : "");
    }
}
