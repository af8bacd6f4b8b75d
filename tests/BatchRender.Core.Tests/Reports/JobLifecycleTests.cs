using System.Diagnostics;
using System.Text.Json;
using BatchRender.Core.Ingestion;
using BatchRender.Core.Messages;
using BatchRender.Core.State;
using BatchRender.Core.Storage;
using BatchRender.Core.Tests.Infrastructure;
using BatchRender.Core.Transport;

namespace BatchRender.Core.Tests.Reports;

/// <summary>
/// Ingest → queue → state → outputs → report, through the real services on Azurite. The "renderer" here is a
/// deterministic test stand-in (fixed bytes per item), labelled as such: these tests are about the pipeline around it.
/// </summary>
public sealed class JobLifecycleTests(AzuriteFixture azurite) : IClassFixture<AzuriteFixture>
{
    private const string Manifest = """
        {
          "schemaVersion": 1,
          "jobId": "gallery-1",
          "defaults": { "width": 64, "height": 64, "steps": 2, "quantization": "none" },
          "items": [
            { "id": "star-001", "prompt": "<script>alert('x')</script> 红色五角星 & \"quotes\"", "seed": 7 },
            { "id": "bloom", "prompt": "一朵黄色的花慢慢绽放", "video": { "frames": 3, "fps": 8 } },
            { "id": "broken", "prompt": "this one fails" }
          ]
        }
        """;

    /// <summary>TEST RENDERER: deterministic bytes standing in for a PNG/GIF, never used outside tests.</summary>
    private static BinaryData FakeImage(string itemId, string what) => BinaryData.FromString($"test-render:{itemId}:{what}");

    private static async Task ProcessAsync(CoreTestHost host, IReceivedTask task)
    {
        var tracker = host.Get<JobTracker>();
        var writer = host.Get<ResilientBlobWriter>();
        var message = OutgoingTasks.TryParse(task.Body, out _)!;
        var start = await tracker.StartItemAsync(message.JobId, message.ItemId, "test-worker");
        if (start.Decision != ItemStartDecision.Render)
        {
            await task.CompleteAsync();
            return;
        }
        if (message.ItemId == "broken")
        {
            await tracker.FailItemAsync(message.JobId, message.ItemId, "the test renderer refuses 'broken' <b>on purpose</b>");
            await task.CompleteAsync();
            return;
        }
        var outputs = new List<string>();
        if (message.Kind == RenderTaskKinds.Video)
        {
            for (var f = 0; f < message.Params.Video!.Frames; f++)
                outputs.Add((await writer.WriteAsync(BlobLayout.Frame(message.JobId, message.ItemId, f), FakeImage(message.ItemId, $"frame{f}"), "image/png")).BlobName);
            outputs.Add((await writer.WriteAsync(BlobLayout.Preview(message.JobId, message.ItemId), FakeImage(message.ItemId, "gif"), "image/gif")).BlobName);
        }
        else
            outputs.Add((await writer.WriteAsync(BlobLayout.Image(message.JobId, message.ItemId), FakeImage(message.ItemId, "png"), "image/png")).BlobName);
        outputs.Add((await writer.WriteAsync(BlobLayout.Sidecar(message.JobId, message.ItemId),
            BinaryData.FromObjectAsJson(new { message.Params.Prompt, message.Params.Seed }), "application/json")).BlobName);
        await tracker.CompleteItemAsync(message.JobId, message.ItemId, outputs, new Dictionary<string, double> { ["render"] = 1500, ["write"] = 20 });
        await task.CompleteAsync();
    }

    [Fact]
    public async Task A_job_runs_to_its_end_survives_a_duplicate_delivery_and_gets_a_report_and_an_escaped_gallery()
    {
        await using var host = await CoreTestHost.StartAsync(azurite);
        await host.Manifests.UploadBlobAsync("gallery.json", BinaryData.FromString(Manifest));
        var result = await host.Get<IngestionService>().IngestBlobAsync("gallery.json");
        Assert.True(result.Accepted, string.Join("\n", result.Validation.Describe()));

        // The star's task is delivered a second time (as Storage Queues may): it must change nothing.
        var receiver = host.Get<IRenderTaskReceiver>();
        var processed = 0;
        var clock = Stopwatch.StartNew();
        var duplicated = false;
        while (processed < 4 && clock.Elapsed < TimeSpan.FromSeconds(60))
        {
            foreach (var task in await receiver.ReceiveAsync(8, TimeSpan.FromSeconds(1)))
            {
                await ProcessAsync(host, task);
                processed++;
                if (!duplicated && task.Properties[TaskProperties.ItemId] == "star-001")
                {
                    await host.Get<IRenderTaskSender>().SendAsync([new OutgoingTask(task.MessageId, task.Body, task.Properties)]);
                    duplicated = true;
                }
            }
        }
        Assert.Equal(4, processed);

        var job = (await host.Get<IngestionService>().GetStatusAsync("gallery-1"))!;
        Assert.Equal(JobStatuses.Failed, job.Status);
        Assert.Equal(new ItemCounts(3, 0, 0, 2, 1, 0, 0), job.Counts);

        // Outputs in Blob Storage match the state, one of each.
        var names = new List<string>();
        await foreach (var blob in host.Renders.GetBlobsAsync(Azure.Storage.Blobs.Models.BlobTraits.None, Azure.Storage.Blobs.Models.BlobStates.None, "gallery-1/", CancellationToken.None))
            names.Add(blob.Name);
        var items = await host.Get<JobStateStore>().GetItemsAsync("gallery-1").ToListAsync();
        var recorded = items.SelectMany(i => i.Outputs).Concat(["gallery-1/_job/manifest.json", "gallery-1/_job/report.json", "gallery-1/_job/index.html"]);
        Assert.Equal(recorded.Order(), names.Order());
        Assert.Equal(1, items.Single(i => i.ItemId == "star-001").Attempts);

        var reportJson = (await host.Renders.GetBlobClient(BlobLayout.Report("gallery-1")).DownloadContentAsync()).Value.Content.ToString();
        using var report = JsonDocument.Parse(reportJson);
        Assert.Equal("failed", report.RootElement.GetProperty("status").GetString());
        var reported = report.RootElement.GetProperty("items").EnumerateArray().ToDictionary(i => i.GetProperty("itemId").GetString()!);
        Assert.Equal(7, reported["star-001"].GetProperty("seed").GetInt64());
        Assert.Equal("gallery-1/bloom.gif", reported["bloom"].GetProperty("preview").GetString());
        Assert.Equal(1500, reported["bloom"].GetProperty("timingsMs").GetProperty("render").GetDouble());
        Assert.Contains("on purpose", reported["broken"].GetProperty("error").GetString());

        var html = (await host.Renders.GetBlobClient(BlobLayout.Gallery("gallery-1")).DownloadContentAsync()).Value.Content.ToString();
        Assert.DoesNotContain("<script>", html);
        Assert.DoesNotContain("<b>on purpose", html);
        Assert.Contains("&lt;script&gt;", html);
        Assert.Contains("红色五角星 &amp; &quot;quotes&quot;", html);
        Assert.Contains("src=\"../star-001.png\"", html);
        Assert.Contains("src=\"../bloom.gif\"", html);
        Assert.Contains("&lt;b&gt;on purpose&lt;/b&gt;", html);
        Assert.Contains("seed 7", html);
        Assert.DoesNotContain("http://", html);
        Assert.DoesNotContain("https://", html);
    }

    [Fact]
    public async Task A_task_abandoned_more_than_the_maximum_is_dead_lettered_with_its_item_and_the_job_ends()
    {
        await using var host = await CoreTestHost.StartAsync(azurite, new Dictionary<string, string?> { ["Transport:MaxDeliveryCount"] = "2" });
        await host.Manifests.UploadBlobAsync("dl.json", BinaryData.FromString(
            """{ "schemaVersion": 1, "jobId": "dl-job", "items": [ { "id": "flaky", "prompt": "always fails" } ] }"""));
        await host.Get<IngestionService>().IngestBlobAsync("dl.json");
        var receiver = host.Get<IRenderTaskReceiver>();
        var tracker = host.Get<JobTracker>();
        for (var delivery = 1; delivery <= 2; delivery++)
        {
            var task = Assert.Single(await receiver.ReceiveAsync(1, TimeSpan.FromSeconds(10)));
            await tracker.StartItemAsync("dl-job", "flaky", "w");
            await tracker.ReleaseItemAsync("dl-job", "flaky", $"transient failure {delivery}");
            await task.AbandonAsync();
        }
        Assert.Empty(await receiver.ReceiveAsync(1, TimeSpan.FromSeconds(1)));

        var job = (await tracker.GetStatusAsync("dl-job"))!;
        Assert.Equal(JobStatuses.Failed, job.Status);
        Assert.Equal(1, job.Counts.DeadLettered);
        var item = (await host.Get<JobStateStore>().GetItemAsync("dl-job", "flaky"))!;
        Assert.StartsWith(DeadLetterReasons.MaxDeliveryCountExceeded, item.LastError);
        Assert.Equal(DeadLetterReasons.MaxDeliveryCountExceeded, Assert.Single(await receiver.PeekDeadLettersAsync(5)).Reason);
        Assert.True(await host.Renders.GetBlobClient(BlobLayout.Report("dl-job")).ExistsAsync());
    }
}
