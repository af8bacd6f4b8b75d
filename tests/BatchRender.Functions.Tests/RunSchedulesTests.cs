using BatchRender.Core.State;
using BatchRender.Core.Tests.Infrastructure;
using BatchRender.Functions.Functions;
using Microsoft.Azure.Functions.Worker;
using Microsoft.Extensions.DependencyInjection;

namespace BatchRender.Functions.Tests;

public sealed class RunSchedulesTests(AzuriteFixture azurite) : IClassFixture<AzuriteFixture>
{
    private sealed class ManualClock(DateTimeOffset now) : TimeProvider
    {
        public DateTimeOffset Now { get; set; } = now;
        public override DateTimeOffset GetUtcNow() => Now;
    }

    [Fact]
    public async Task A_timer_that_fires_twice_for_one_occurrence_starts_one_job()
    {
        var clock = new ManualClock(new DateTimeOffset(2026, 11, 25, 1, 59, 30, TimeSpan.Zero));
        await using var host = await CoreTestHost.StartAsync(azurite, configure: services => services.AddSingleton<TimeProvider>(clock));
        await host.Schedules.CreateIfNotExistsAsync();
        await host.Schedules.UploadBlobAsync("nightly.json", BinaryData.FromString("""
            { "cron": "0 2 * * *", "timeZone": "UTC",
              "manifest": { "schemaVersion": 1, "defaults": { "width": 64, "height": 64, "steps": 4 },
                            "items": [ { "id": "a", "prompt": "a red circle" }, { "id": "b", "prompt": "一个蓝色的方块" } ] } }
            """));
        // Two instances of the function app, as a scaled-out Functions host runs them.
        var first = ActivatorUtilities.CreateInstance<RunSchedules>(host.Services);
        var second = ActivatorUtilities.CreateInstance<RunSchedules>(host.Services);
        await first.RunAsync(new TimerInfo(), CancellationToken.None); // 01:59:30: the schedule is seen, nothing due

        clock.Now = clock.Now.AddMinutes(1); // 02:00:30: the 02:00 occurrence is due, and the timer fires twice
        await Task.WhenAll(first.RunAsync(new TimerInfo(), CancellationToken.None), second.RunAsync(new TimerInfo { IsPastDue = true }, CancellationToken.None));
        await first.RunAsync(new TimerInfo(), CancellationToken.None);

        var jobs = await host.Get<JobStateStore>().ListJobsAsync();
        var job = Assert.Single(jobs);
        Assert.Equal("nightly-20261125T0200Z", job.JobId);
        Assert.Equal(2, job.Counts.Total);
        Assert.Equal(2, await host.QueuedTasksAsync());
    }
}
