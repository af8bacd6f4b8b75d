using System.Text.Json;
using BatchRender.Core.Ingestion;
using BatchRender.Core.State;
using BatchRender.Core.Storage;
using BatchRender.Core.Tests.Infrastructure;
using Microsoft.Extensions.DependencyInjection;

namespace BatchRender.Core.Tests.Ingestion;

public sealed class ScheduleRunnerTests(AzuriteFixture azurite) : IClassFixture<AzuriteFixture>
{
    private sealed class ManualClock(DateTimeOffset now) : TimeProvider
    {
        public DateTimeOffset Now { get; set; } = now;
        public override DateTimeOffset GetUtcNow() => Now;
    }

    private static readonly DateTimeOffset T0 = new(2026, 11, 25, 1, 59, 30, TimeSpan.Zero);

    private static async Task<(CoreTestHost Host, ManualClock Clock)> StartAsync(AzuriteFixture azurite)
    {
        var clock = new ManualClock(T0);
        var host = await CoreTestHost.StartAsync(azurite, configure: services => services.AddSingleton<TimeProvider>(clock));
        await host.Schedules.CreateIfNotExistsAsync();
        return (host, clock);
    }

    [Fact]
    public async Task Each_due_occurrence_starts_one_job_even_when_the_timer_fires_twice_and_two_instances_run()
    {
        var (host, clock) = await StartAsync(azurite);
        await using var _ = host;
        await host.Schedules.UploadBlobAsync("nightly.json", BinaryData.FromString("""
            { "cron": "*/1 * * * *", "timeZone": "UTC",
              "manifest": { "schemaVersion": 1, "jobId": "ignored", "items": [ { "id": "a", "prompt": "a red circle" }, { "id": "b", "prompt": "一个蓝色的方块" } ] } }
            """));
        var runner = host.Get<ScheduleRunner>();
        Assert.Empty(await runner.RunDueAsync()); // first sight: counting starts now

        clock.Now = T0.AddMinutes(2); // 02:01:30: occurrences 02:00 and 02:01 are due
        var second = new ScheduleRunner(host.Get<BatchRender.Core.Schedules.ScheduleParser>(), host.Get<IngestionService>(),
            host.Get<Azure.Storage.Blobs.BlobServiceClient>(), host.Get<Azure.Data.Tables.TableServiceClient>(), host.Get<ResilientBlobWriter>(),
            host.Get<Microsoft.Extensions.Options.IOptions<BatchRender.Core.Configuration.BlobOptions>>(),
            host.Get<Microsoft.Extensions.Options.IOptions<BatchRender.Core.Configuration.StateOptions>>(), clock);
        var runs = await Task.WhenAll(runner.RunDueAsync(), second.RunDueAsync(), runner.RunDueAsync());
        var started = runs.SelectMany(r => r).Where(s => !s.ClaimedElsewhere).ToList();
        Assert.Equal(["nightly-20261125T0200Z", "nightly-20261125T0201Z"], started.Select(s => s.JobId).Order());
        Assert.All(started, s => Assert.True(s.Result!.Accepted));
        Assert.Empty(await runner.RunDueAsync()); // fired again at the same instant: nothing

        var store = host.Get<JobStateStore>();
        foreach (var jobId in new[] { "nightly-20261125T0200Z", "nightly-20261125T0201Z" })
        {
            var job = (await store.GetJobAsync(jobId))!;
            Assert.Equal(2, job.Counts.Total);
            Assert.Contains(job.Warnings, w => w.Contains("jobId"));
        }
        Assert.Null(await store.GetJobAsync("ignored"));
        Assert.Equal(4, await host.QueuedTasksAsync());
    }

    [Fact]
    public async Task A_schedule_naming_a_manifest_blob_runs_it_and_an_invalid_schedule_gets_errors_json()
    {
        var (host, clock) = await StartAsync(azurite);
        await using var _ = host;
        await host.Manifests.UploadBlobAsync("templates/weekly.json", BinaryData.FromString(
            """{ "schemaVersion": 1, "items": [ { "id": "one", "prompt": "a small green triangle" } ] }"""));
        await host.Schedules.UploadBlobAsync("weekly.json", BinaryData.FromString(
            """{ "cron": "0 2 * * *", "timeZone": "Europe/Paris", "manifestBlob": "templates/weekly.json" }"""));
        await host.Schedules.UploadBlobAsync("broken.json", BinaryData.FromString("""{ "cron": "every day", "manifestBlob": "x.json", "colour": 1 }"""));

        var runner = host.Get<ScheduleRunner>();
        await runner.RunDueAsync();
        clock.Now = T0.AddDays(1);
        var started = Assert.Single(await runner.RunDueAsync());
        Assert.Equal("weekly-20261126T0100Z", started.JobId); // 02:00 in Paris (winter) is 01:00 UTC
        Assert.Equal(1, started.Result!.TasksEnqueued);

        var errors = await host.Renders.GetBlobClient(BlobLayout.ScheduleErrors("broken")).DownloadContentAsync();
        using var document = JsonDocument.Parse(errors.Value.Content.ToString());
        var paths = document.RootElement.GetProperty("problems").EnumerateArray().Select(p => p.GetProperty("path").GetString()).ToList();
        Assert.Contains("cron", paths);
    }
}
