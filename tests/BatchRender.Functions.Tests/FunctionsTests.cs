using System.Text;
using System.Text.Json;
using Azure.Storage.Blobs;
using BatchRender.Core.State;
using BatchRender.Core.Storage;
using BatchRender.Core.Tests.Infrastructure;
using BatchRender.Functions.Functions;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Mvc;
using Microsoft.Extensions.DependencyInjection;

namespace BatchRender.Functions.Tests;

/// <summary>The function classes called directly (no Functions host here) over the real Core services on Azurite.</summary>
public sealed class FunctionsTests(AzuriteFixture azurite) : IClassFixture<AzuriteFixture>
{
    private const string ValidManifest = """
        { "schemaVersion": 1, "jobId": "spring-0042", "model": "demo",
          "defaults": { "width": 64, "height": 64, "steps": 4, "seed": 1 },
          "items": [ { "id": "a", "prompt": "a red star" }, { "id": "b", "prompt": "蓝色背景上的黄色圆" }, { "id": "c", "prompt": "a green square" } ] }
        """;

    [Fact]
    public async Task A_manifest_blob_becomes_a_job_with_its_tasks_on_the_queue_and_other_blobs_are_ignored()
    {
        await using var host = await CoreTestHost.StartAsync(azurite);
        var function = ActivatorUtilities.CreateInstance<IngestManifest>(host.Services);
        var blob = host.Manifests.GetBlobClient("campaigns/spring.json");
        await blob.UploadAsync(BinaryData.FromString(ValidManifest));
        var input = host.Manifests.GetBlobClient("campaigns/scene.png");
        await input.UploadAsync(BinaryData.FromBytes([0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A]));

        await function.RunAsync(blob, "campaigns/spring.json", CancellationToken.None);
        await function.RunAsync(input, "campaigns/scene.png", CancellationToken.None);
        await function.RunAsync(blob, "campaigns/spring.json", CancellationToken.None); // the event delivered twice

        var job = await host.Get<JobTracker>().GetStatusAsync("spring-0042");
        Assert.NotNull(job);
        Assert.Equal((3, 3), (job.Counts.Total, job.Counts.Queued));
        Assert.True(job.IngestCompleted);
        Assert.Equal(3, await QueueLengthAsync(host));
        Assert.True((await host.Renders.GetBlobClient(BlobLayout.Manifest("spring-0042")).ExistsAsync()).Value);
        Assert.False(IngestManifest.IsManifest("templates/nightly.json"));
    }

    [Fact]
    public async Task Submitting_an_invalid_manifest_answers_400_with_every_problem_writes_errors_json_and_enqueues_nothing()
    {
        await using var host = await CoreTestHost.StartAsync(azurite);
        var api = ActivatorUtilities.CreateInstance<JobsApi>(host.Services);
        const string invalid = """
            { "schemaVersion": 1, "jobId": "bad-job",
              "items": [ { "id": "a", "prompt": "ok", "width": 100 }, { "id": "a", "prompt": "  " }, { "id": "b", "prompt": "x", "colour": "red" } ] }
            """;

        var result = await api.SubmitAsync(Request(invalid), CancellationToken.None);

        var bad = Assert.IsType<BadRequestObjectResult>(result);
        var body = Assert.IsType<SubmitRejected>(bad.Value);
        Assert.Equal("bad-job", body.JobId);
        Assert.Contains(body.Problems, p => p.Path == "items[0].width");
        Assert.Contains(body.Problems, p => p.Path.StartsWith("items[1]"));
        Assert.Contains(body.Problems, p => p.Path.StartsWith("items[2].colour"));
        Assert.Equal(body.TotalProblems, body.Problems.Count);
        var errors = await host.Renders.GetBlobClient(BlobLayout.Errors("bad-job")).DownloadContentAsync();
        Assert.Contains("items[0].width", errors.Value.Content.ToString());
        Assert.Equal(0, await QueueLengthAsync(host));
        Assert.Null(await host.Get<JobTracker>().GetStatusAsync("bad-job"));
    }

    [Fact]
    public async Task Submit_then_status_then_cancel_over_http()
    {
        await using var host = await CoreTestHost.StartAsync(azurite);
        var api = ActivatorUtilities.CreateInstance<JobsApi>(host.Services);

        var accepted = Assert.IsType<AcceptedResult>(await api.SubmitAsync(Request(ValidManifest), CancellationToken.None));
        var submitted = Assert.IsType<SubmitAccepted>(accepted.Value);
        Assert.Equal(("spring-0042", 3), (submitted.JobId, submitted.TasksEnqueued));
        Assert.Equal("/api/jobs/spring-0042", accepted.Location);

        var status = Assert.IsType<JobView>(Assert.IsType<OkObjectResult>(await api.GetAsync(Request(""), "spring-0042", CancellationToken.None)).Value);
        Assert.Equal((JobStatuses.Queued, 3), (status.Status, status.Counts.Queued));
        Assert.EndsWith(BlobLayout.Gallery("spring-0042"), status.Gallery);
        // The status serialises as the HTTP response would.
        Assert.Contains("\"status\":\"queued\"", JsonSerializer.Serialize(status, new JsonSerializerOptions(JsonSerializerDefaults.Web)));

        var cancelled = Assert.IsType<JobView>(Assert.IsType<OkObjectResult>(await api.CancelAsync(Request(""), "spring-0042", CancellationToken.None)).Value);
        Assert.True(cancelled.CancelRequested);
        Assert.Equal(JobStatuses.Cancelled, cancelled.Status); // nothing had started: every item cancelled, the job ended
        Assert.Equal(3, cancelled.Counts.Cancelled);

        Assert.IsType<NotFoundObjectResult>(await api.GetAsync(Request(""), "no-such-job", CancellationToken.None));
        Assert.IsType<NotFoundObjectResult>(await api.CancelAsync(Request(""), "no-such-job", CancellationToken.None));
    }

    /// <summary>Tasks on the queue; 0 when nothing ever created it (nothing was sent).</summary>
    private static Task<int> QueueLengthAsync(CoreTestHost host) => host.QueuedTasksAsync();

    private static HttpRequest Request(string body)
    {
        var context = new DefaultHttpContext();
        context.Request.Body = new MemoryStream(Encoding.UTF8.GetBytes(body));
        context.Request.ContentType = "application/json";
        return context.Request;
    }
}
