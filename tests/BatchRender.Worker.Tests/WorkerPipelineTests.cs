using BatchRender.Core.Configuration;
using BatchRender.Core.Messages;
using BatchRender.Core.State;
using BatchRender.Core.Storage;
using BatchRender.Core.Tests.Infrastructure;
using BatchRender.Core.Transport;
using BatchRender.Worker.Tests.Infrastructure;

namespace BatchRender.Worker.Tests;

/// <summary>The worker end to end on a real Azurite, rendering with the deterministic test renderer.</summary>
public sealed class WorkerPipelineTests(AzuriteFixture azurite) : IClassFixture<AzuriteFixture>
{
    [Fact]
    public async Task Renders_every_item_writes_outputs_and_sidecars_and_ends_the_job()
    {
        var h = new WorkerHarness(azurite, "e2e");
        const string job = "spring-0042";
        var tasks = new List<RenderTaskMessage>
        {
            WorkerHarness.Image(job, "star-1", 64, seed: 7),
            WorkerHarness.Image(job, "star-2", 64, seed: 8) with { Params = WorkerHarness.Image(job, "star-2").Params with { Prompt = "蓝色背景左上角有一个大的红色五角星", SeedWasRandom = true } },
            WorkerHarness.Image(job, "big-1", 96),
            WorkerHarness.Image(job, "big-2", 96),
            WorkerHarness.Video(job, "bloom", frames: 3),
        };
        await h.SubmitAsync(job, tasks);

        var worker = h.Worker();
        await worker.StartAsync(CancellationToken.None);
        var ended = await h.WaitForJobEndAsync(job);
        await h.WaitUntilAsync(async () => (await h.Renders.GetBlobClient(BlobLayout.Gallery(job)).ExistsAsync()).Value, "the gallery");
        await worker.StopAsync(CancellationToken.None);

        Assert.Equal(JobStatuses.Done, ended.Status);
        Assert.Equal(5, ended.Counts.Done);
        // The gallery a person opens: every item, linking its image (the video by its animated preview).
        var gallery = System.Text.Encoding.UTF8.GetString(await h.DownloadAsync(BlobLayout.Gallery(job)));
        foreach (var task in tasks) Assert.Contains($"id=\"{task.ItemId}\"", gallery);
        Assert.Contains("../star-1.png", gallery);
        Assert.Contains("../bloom.gif", gallery);
        using var report = System.Text.Json.JsonDocument.Parse(await h.DownloadAsync(BlobLayout.Report(job)));
        Assert.Equal(JobStatuses.Done, report.RootElement.GetProperty("status").GetString());
        // Compatible tasks went through the engine together: never a group mixing sizes or kinds.
        Assert.All(h.Engine.Groups, g => Assert.Single(g.Select(id => tasks.Single(t => $"{t.JobId}/{t.ItemId}" == id)).Select(t => (t.Kind, t.Params.Width)).Distinct()));
        Assert.Contains(h.Engine.Groups, g => g.Count > 1);

        foreach (var task in tasks)
        {
            var sidecar = await h.SidecarAsync(job, task.ItemId);
            Assert.Equal(task.Params.Prompt, sidecar.Prompt);
            Assert.Equal(task.Params.NegativePrompt, sidecar.NegativePrompt);
            Assert.Equal(task.Params.Seed, sidecar.Seed);
            Assert.Equal(task.Params.SeedWasRandom, sidecar.SeedWasRandom);
            Assert.Equal((task.Params.Sampler, task.Params.Steps, task.Params.GuidanceScale), (sidecar.Sampler, sidecar.Steps, sidecar.GuidanceScale));
            Assert.Equal((task.Model, DeterministicTestRenderEngine.ModelHash, task.Params.Quantization), (sidecar.Model, sidecar.ModelHash, sidecar.Quantization));
            Assert.False(string.IsNullOrEmpty(sidecar.WorkerId));
            Assert.Contains("denoise", sidecar.TimingsMs.Keys);
            Assert.Contains("groupRender", sidecar.TimingsMs.Keys);
            foreach (var output in sidecar.Outputs)
                Assert.Equal(output.Sha256, WorkerHarness.Sha256(await h.DownloadAsync(output.Blob)));

            var item = (await h.State.GetItemAsync(job, task.ItemId))!;
            Assert.Equal(ItemStates.Done, item.State);
            Assert.Equal(1, item.Attempts);
            Assert.Equal(sidecar.Outputs.Select(o => o.Blob).Append(BlobLayout.Sidecar(job, task.ItemId)), item.Outputs);
        }
        var image = await h.SidecarAsync(job, "star-1");
        Assert.Equal([BlobLayout.Image(job, "star-1")], image.Outputs.Select(o => o.Blob));
        Assert.Equal(DeterministicTestRenderEngine.Render(tasks[0]).Png, await h.DownloadAsync(BlobLayout.Image(job, "star-1")));
        var video = await h.SidecarAsync(job, "bloom");
        Assert.Equal([BlobLayout.Frame(job, "bloom", 0), BlobLayout.Frame(job, "bloom", 1), BlobLayout.Frame(job, "bloom", 2), BlobLayout.Preview(job, "bloom")],
            video.Outputs.Select(o => o.Blob));
        Assert.Equal(0, await h.QueueLengthAsync());
    }

    [Fact]
    public async Task The_same_task_delivered_twice_gives_one_output_and_consistent_state()
    {
        var h = new WorkerHarness(azurite, "dup");
        const string job = "dup-job";
        var task = WorkerHarness.Image(job, "only");
        await h.SubmitAsync(job, [task]);
        var worker = h.Worker();
        await worker.StartAsync(CancellationToken.None);
        await h.WaitForJobEndAsync(job);
        var firstSidecar = await h.DownloadAsync(BlobLayout.Sidecar(job, "only"));

        await h.Sender.SendAsync([OutgoingTasks.From(task)]); // delivered again after it finished
        await h.WaitUntilAsync(async () => await h.QueueLengthAsync() == 0, "the redelivered task to be completed");
        await worker.StopAsync(CancellationToken.None);

        Assert.Equal(1, h.Engine.RenderedTasks);
        var outputs = (await h.ListRendersAsync(job + "/")).Select(b => b.Name).Where(n => !n.Contains($"/{BlobLayout.JobFolder}/"));
        Assert.Equal([BlobLayout.Image(job, "only"), BlobLayout.Sidecar(job, "only")], outputs.OrderByDescending(n => n.EndsWith(".png")));
        Assert.Equal(firstSidecar, await h.DownloadAsync(BlobLayout.Sidecar(job, "only")));
        var item = (await h.State.GetItemAsync(job, "only"))!;
        Assert.Equal((ItemStates.Done, 1), (item.State, item.Attempts));
        Assert.Equal(1, (await h.State.GetJobAsync(job))!.Counts.Done);
    }

    [Fact]
    public async Task Unparseable_tasks_and_unknown_models_are_dead_lettered_with_a_reason()
    {
        var h = new WorkerHarness(azurite, "dead");
        const string job = "dl-job";
        await h.SubmitAsync(job, [WorkerHarness.Image(job, "good"), WorkerHarness.Image(job, "elsewhere", model: "hunyuan-dit-v1.2"),
            WorkerHarness.Image(job, "garbled")], withhold: "garbled");
        // The "garbled" item's message is a body that is not a task (its properties still name the item).
        await h.Sender.SendAsync([new OutgoingTask("garbled-1", BinaryData.FromString("{\"jobId\": \"dl-job\", \"itemId\": "),
            new Dictionary<string, string> { [TaskProperties.JobId] = job, [TaskProperties.ItemId] = "garbled" })]);
        // And a raw message no sender of ours wrote at all.
        await azurite.QueueService().GetQueueClient(h.Transport.QueueName).SendMessageAsync("not a task envelope");

        var worker = h.Worker();
        await worker.StartAsync(CancellationToken.None);
        var ended = await h.WaitForJobEndAsync(job);
        await h.WaitUntilAsync(async () => await h.QueueLengthAsync() == 0, "the queue to drain");
        await worker.StopAsync(CancellationToken.None);

        Assert.Equal(JobStatuses.Failed, ended.Status);
        Assert.Equal((1, 2), (ended.Counts.Done, ended.Counts.DeadLettered));
        var dead = await h.Receiver.PeekDeadLettersAsync(10);
        Assert.Equal(3, dead.Count);
        var unknownModel = Assert.Single(dead, d => d.Reason == DeadLetterReasons.UnknownModel);
        Assert.Contains("hunyuan-dit-v1.2", unknownModel.Description);
        Assert.Equal(2, dead.Count(d => d.Reason == DeadLetterReasons.Unparseable));
        Assert.All(dead.Where(d => d.Reason == DeadLetterReasons.Unparseable), d => Assert.False(string.IsNullOrEmpty(d.Description)));
        var elsewhere = (await h.State.GetItemAsync(job, "elsewhere"))!;
        Assert.Equal(ItemStates.DeadLettered, elsewhere.State);
        Assert.StartsWith(DeadLetterReasons.UnknownModel, elsewhere.LastError);
        Assert.Equal(ItemStates.DeadLettered, (await h.State.GetItemAsync(job, "garbled"))!.State);
        Assert.False(await h.Renders.GetBlobClient(BlobLayout.Image(job, "elsewhere")).ExistsAsync());
    }

    [Fact]
    public async Task A_cancelled_jobs_tasks_are_completed_without_rendering()
    {
        var h = new WorkerHarness(azurite, "cancel");
        const string job = "cancel-job";
        await h.SubmitAsync(job, Enumerable.Range(0, 5).Select(i => WorkerHarness.Image(job, $"i{i}")).ToList());
        await h.State.CancelJobAsync(job);

        var worker = h.Worker();
        await worker.StartAsync(CancellationToken.None);
        await h.WaitUntilAsync(async () => await h.QueueLengthAsync() == 0, "the cancelled tasks to be completed");
        await worker.StopAsync(CancellationToken.None);

        Assert.Equal(0, h.Engine.RenderedTasks);
        Assert.Empty(await h.ListRendersAsync(job + "/" ));
        var state = (await h.State.GetJobAsync(job))!;
        Assert.Equal(JobStatuses.Cancelled, state.Status);
        Assert.Equal(5, state.Counts.Cancelled);
        Assert.Empty(await h.Receiver.PeekDeadLettersAsync(10));
    }

    [Fact]
    public async Task A_task_that_keeps_failing_is_dead_lettered_after_the_maximum_deliveries()
    {
        var h = new WorkerHarness(azurite, "maxdel", maxDeliveryCount: 2);
        const string job = "flaky-job";
        await h.SubmitAsync(job, [WorkerHarness.Image(job, "flaky")]);
        var worker = h.Worker(engine: new FailingEngine());
        await worker.StartAsync(CancellationToken.None);
        var ended = await h.WaitForJobEndAsync(job);
        await worker.StopAsync(CancellationToken.None);

        Assert.Equal(JobStatuses.Failed, ended.Status);
        var item = (await h.State.GetItemAsync(job, "flaky"))!;
        Assert.Equal((ItemStates.DeadLettered, 2), (item.State, item.Attempts));
        Assert.Contains("GPU fell off the bus", item.LastError);
        var dead = Assert.Single(await h.Receiver.PeekDeadLettersAsync(10));
        Assert.Equal(DeadLetterReasons.MaxDeliveryCountExceeded, dead.Reason);
    }

    private sealed class FailingEngine : Rendering.IRenderEngine
    {
        public Task PreloadAsync(string model, string quantization, CancellationToken cancellationToken = default) => Task.CompletedTask;
        public Task<IReadOnlyList<Rendering.TaskRenderOutcome>> RenderAsync(IReadOnlyList<RenderTaskMessage> group, CancellationToken cancellationToken = default) =>
            throw new InvalidOperationException("GPU fell off the bus");
    }
}
