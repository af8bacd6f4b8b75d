using System.Diagnostics;
using System.Text;
using System.Text.Json;
using Azure.Storage.Blobs;
using BatchRender.Core.Configuration;
using BatchRender.Core.Ingestion;
using BatchRender.Core.Manifests;
using BatchRender.Core.Messages;
using BatchRender.Core.State;
using BatchRender.Core.Storage;
using BatchRender.Core.Tests.Infrastructure;
using BatchRender.Core.Transport;
using Xunit.Abstractions;

namespace BatchRender.Core.Tests.Ingestion;

public sealed class IngestionServiceTests(AzuriteFixture azurite, ITestOutputHelper output) : IClassFixture<AzuriteFixture>
{
    private static readonly byte[] Png = [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A, 0, 0, 0, 13, 0x49, 0x48, 0x44, 0x52];

    internal const string SampleManifest = """
        {
          "schemaVersion": 1,
          "jobId": "spring-0042",
          "defaults": { "width": 64, "height": 64, "steps": 2, "seed": 42, "quantization": "none" },
          "items": [
            { "id": "star-001", "prompt": "蓝色背景左上角有一个大的红色五角星", "seed": 7 },
            { "id": "bloom", "prompt": "一朵黄色的花慢慢绽放", "video": { "frames": 4, "fps": 8 } },
            { "id": "repair-1", "prompt": "a green square in the middle",
              "inpaint": { "image": "inputs/scene.png", "mask": "inputs/scene-mask.png", "strength": 0.8 } }
          ]
        }
        """;

    private static async Task UploadAsync(BlobContainerClient container, string name, string text) =>
        await container.UploadBlobAsync(name, BinaryData.FromString(text));

    private static async Task<List<IReceivedTask>> DrainAsync(IRenderTaskReceiver receiver, int expected)
    {
        var all = new List<IReceivedTask>();
        var clock = Stopwatch.StartNew();
        while (clock.Elapsed < TimeSpan.FromSeconds(30))
        {
            var batch = await receiver.ReceiveAsync(32, TimeSpan.FromMilliseconds(500));
            if (batch.Count == 0 && all.Count >= expected) break;
            all.AddRange(batch);
        }
        return all;
    }

    [Fact]
    public async Task A_valid_manifest_blob_becomes_a_job_its_items_one_task_each_and_a_copy_of_the_manifest()
    {
        await using var host = await CoreTestHost.StartAsync(azurite);
        await UploadAsync(host.Manifests, "campaigns/spring/manifest.json", SampleManifest);
        await host.Manifests.UploadBlobAsync("campaigns/spring/inputs/scene.png", BinaryData.FromBytes(Png));
        await host.Manifests.UploadBlobAsync("campaigns/spring/inputs/scene-mask.png", BinaryData.FromBytes(Png));

        var ingestion = host.Get<IngestionService>();
        var result = await ingestion.IngestBlobAsync("campaigns/spring/manifest.json");
        Assert.True(result.Accepted, string.Join("\n", result.Validation.Describe()));
        Assert.Equal(("spring-0042", 3, false), (result.JobId, result.TasksEnqueued, result.AlreadyIngested));

        var job = (await ingestion.GetStatusAsync("spring-0042"))!;
        Assert.Equal((JobStatuses.Queued, 3, true), (job.Status, job.Counts.Queued, job.IngestCompleted));
        Assert.Equal("campaigns/spring/manifest.json", job.SourceManifest);

        var copy = await host.Renders.GetBlobClient(BlobLayout.Manifest("spring-0042")).DownloadContentAsync();
        Assert.Equal(SampleManifest, copy.Value.Content.ToString());

        var receiver = host.Get<IRenderTaskReceiver>();
        var tasks = await DrainAsync(receiver, 3);
        Assert.Equal(3, tasks.Count);
        var messages = tasks.Select(t => (Task: t, Message: OutgoingTasks.TryParse(t.Body, out _)!)).ToDictionary(t => t.Message.ItemId);
        Assert.Equal(["bloom", "repair-1", "star-001"], messages.Keys.Order());
        foreach (var (itemId, (task, message)) in messages)
        {
            Assert.Equal(message.ComputeMessageId(), task.MessageId);
            Assert.Equal(("spring-0042", itemId), (task.Properties[TaskProperties.JobId], task.Properties[TaskProperties.ItemId]));
            Assert.Equal(task.MessageId, (await host.Get<JobStateStore>().GetItemAsync("spring-0042", itemId))!.MessageId);
        }
        Assert.Equal(7, messages["star-001"].Message.Params.Seed);
        Assert.Equal(RenderTaskKinds.Video, messages["bloom"].Message.Kind);
        Assert.Equal("campaigns/spring/inputs/scene.png", messages["repair-1"].Message.Params.Inpaint!.ImageBlob);
        await Task.WhenAll(tasks.Select(t => t.AbandonAsync()));

        // The same blob event delivered again: nothing new.
        var again = await ingestion.IngestBlobAsync("campaigns/spring/manifest.json");
        Assert.True(again.AlreadyIngested);
        Assert.Equal(0, again.TasksEnqueued);
        Assert.Equal(3, (await DrainAsync(receiver, 3)).Count);
    }

    [Fact]
    public async Task An_invalid_manifest_enqueues_nothing_records_no_job_and_writes_errors_json_naming_each_problem()
    {
        await using var host = await CoreTestHost.StartAsync(azurite);
        await UploadAsync(host.Manifests, "bad.json", """
            { "schemaVersion": 1, "jobId": "bad-job",
              "items": [ { "id": "a", "prompt": "x", "width": 100 },
                         { "id": "a", "prompt": "", "model": "nope" },
                         { "id": "c", "prompt": "y", "inpaint": { "image": "../../etc/passwd", "mask": "missing.png" } } ] }
            """);
        var result = await host.Get<IngestionService>().IngestBlobAsync("bad.json");
        Assert.False(result.Accepted);
        Assert.Equal(0, result.TasksEnqueued);
        output.WriteLine(string.Join("\n", result.Validation.Describe()));
        var paths = result.Problems.Select(p => p.Path).ToList();
        Assert.Contains("items[0].width", paths);
        Assert.Contains("items[2].inpaint.image", paths);

        var errors = await host.Renders.GetBlobClient(BlobLayout.Errors(result.JobId)).DownloadContentAsync();
        using var document = JsonDocument.Parse(errors.Value.Content.ToString());
        Assert.Equal(result.Validation.TotalProblems, document.RootElement.GetProperty("totalProblems").GetInt32());
        Assert.Contains(document.RootElement.GetProperty("problems").EnumerateArray(), p => p.GetProperty("path").GetString() == "items[0].width");

        Assert.Null(await host.Get<JobStateStore>().GetJobAsync(result.JobId));
        Assert.False(await host.Renders.GetBlobClient(BlobLayout.Manifest(result.JobId)).ExistsAsync());
        Assert.Empty(await host.Get<IRenderTaskReceiver>().ReceiveAsync(10, TimeSpan.FromMilliseconds(300)));
    }

    [Fact]
    public async Task A_stream_that_cannot_seek_is_ingested_and_a_different_manifest_under_the_same_job_id_is_refused()
    {
        await using var host = await CoreTestHost.StartAsync(azurite);
        var ingestion = host.Get<IngestionService>();
        var manifest = """{ "schemaVersion": 1, "jobId": "streamed", "items": [ { "id": "one", "prompt": "a red circle" } ] }""";
        var inputs = new BlobManifestInputs(host.Manifests, "");
        var result = await ingestion.IngestStreamAsync(new ForwardOnlyStream(Encoding.UTF8.GetBytes(manifest)), "upload.json", inputs);
        Assert.True(result.Accepted, string.Join("\n", result.Validation.Describe()));
        Assert.Equal(1, result.TasksEnqueued);

        var changed = manifest.Replace("a red circle", "a blue square");
        var refused = await ingestion.IngestStreamAsync(new MemoryStream(Encoding.UTF8.GetBytes(changed)), "upload.json", inputs);
        Assert.False(refused.Accepted);
        Assert.Equal("$.jobId", Assert.Single(refused.Problems).Path);
        Assert.Equal(1, (await DrainAsync(host.Get<IRenderTaskReceiver>(), 1)).Count);
    }

    [Fact]
    public async Task Cancel_and_status_go_through_the_service()
    {
        await using var host = await CoreTestHost.StartAsync(azurite);
        var ingestion = host.Get<IngestionService>();
        await UploadAsync(host.Manifests, "m.json", """{ "schemaVersion": 1, "jobId": "to-cancel", "items": [ { "id": "a", "prompt": "p" }, { "id": "b", "prompt": "q" } ] }""");
        await ingestion.IngestBlobAsync("m.json");
        var cancelled = (await ingestion.CancelJobAsync("to-cancel"))!;
        Assert.Equal(JobStatuses.Cancelled, cancelled.Status);
        Assert.Equal(2, cancelled.Counts.Cancelled);
        Assert.Null(await ingestion.CancelJobAsync("no-such-job"));
        Assert.Null(await ingestion.GetStatusAsync("no-such-job"));
        // The job's report says so.
        Assert.True(await host.Renders.GetBlobClient(BlobLayout.Report("to-cancel")).ExistsAsync());
    }

    [Fact]
    public async Task Ingest_rate_of_a_few_thousand_items_on_Azurite_is_measured()
    {
        // A measurement printed for the record, not a timed assertion (the bench command reports the real number).
        await using var host = await CoreTestHost.StartAsync(azurite);
        const int n = 1_000;
        var manifest = new StringBuilder("""{ "schemaVersion": 1, "jobId": "rate", "items": [""");
        for (var i = 0; i < n; i++) manifest.Append(i == 0 ? "" : ",").Append($$"""{ "id": "i{{i}}", "prompt": "a red circle number {{i}}" }""");
        manifest.Append("]}");
        await UploadAsync(host.Manifests, "rate.json", manifest.ToString());

        var clock = Stopwatch.StartNew();
        var result = await host.Get<IngestionService>().IngestBlobAsync("rate.json");
        clock.Stop();
        Assert.Equal(n, result.TasksEnqueued);
        output.WriteLine($"ingested {n} tasks in {clock.Elapsed.TotalSeconds:0.00} s: {n / clock.Elapsed.TotalSeconds:0} tasks/s");
        // Packed TasksPerQueueMessage to a queue message (the default, 4; prompts this short never hit the size limit).
        var properties = await host.TaskQueue.GetPropertiesAsync();
        Assert.Equal(n / new TransportOptions().TasksPerQueueMessage, properties.Value.ApproximateMessagesCount);
        Assert.Equal(n, (await host.Get<JobStateStore>().GetJobAsync("rate"))!.Counts.Queued);
    }

    private sealed class ForwardOnlyStream(byte[] bytes) : MemoryStream(bytes)
    {
        public override bool CanSeek => false;
    }
}
