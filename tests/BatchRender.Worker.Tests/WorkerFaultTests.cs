using BatchRender.Core.Configuration;
using BatchRender.Core.Messages;
using BatchRender.Core.State;
using BatchRender.Core.Storage;
using BatchRender.Core.Tests.Infrastructure;
using BatchRender.Worker.Tests.Infrastructure;

namespace BatchRender.Worker.Tests;

/// <summary>
/// Faults on a real Azurite: failing blob writes, duplicate deliveries, workers stopped mid-batch. Whatever happens,
/// N items in → exactly N intact outputs (checked by hash against their sidecars), and the state counts what is stored.
/// </summary>
public sealed class WorkerFaultTests(AzuriteFixture azurite) : IClassFixture<AzuriteFixture>
{
    [Fact]
    public async Task Under_injected_503s_timeouts_and_duplicate_deliveries_N_items_make_exactly_N_intact_outputs()
    {
        var h = new WorkerHarness(azurite, "faults");
        const string job = "faulty-job";
        const int n = 12;
        var tasks = Enumerable.Range(0, n).Select(i => WorkerHarness.Image(job, $"item-{i:D2}", seed: i)).ToList();
        await h.SubmitAsync(job, tasks, copies: 2); // every task delivered twice

        // Two workers at once, each failing a fifth of its blob requests (503 before or after the write lands, or a hang).
        var faultsA = new FaultInjectionPolicy(0.2, seed: 1);
        var faultsB = new FaultInjectionPolicy(0.2, seed: 2);
        var options = new WorkerOptions { BatchSize = 3, DrainTimeout = TimeSpan.FromSeconds(10) };
        var a = h.Worker(options, faultsA);
        var b = h.Worker(options, faultsB);
        await Task.WhenAll(a.StartAsync(CancellationToken.None), b.StartAsync(CancellationToken.None));
        var ended = await h.WaitForJobEndAsync(job, TimeSpan.FromSeconds(120));
        await h.WaitUntilAsync(async () => await h.QueueLengthAsync() == 0, "the duplicates to be completed", TimeSpan.FromSeconds(60));
        await Task.WhenAll(a.StopAsync(CancellationToken.None), b.StopAsync(CancellationToken.None));

        Assert.True(faultsA.Injected + faultsB.Injected > 0, "no faults were injected");
        await AssertExactlyOneIntactOutputPerItemAsync(h, job, tasks);
        Assert.Equal((JobStatuses.Done, n), (ended.Status, ended.Counts.Done));
        Assert.Empty(await h.Receiver.PeekDeadLettersAsync(10));
    }

    [Fact]
    public async Task A_worker_stopped_mid_batch_abandons_its_tasks_and_a_restarted_worker_finishes_them()
    {
        var h = new WorkerHarness(azurite, "restart");
        const string job = "restart-job";
        const int n = 8;
        var tasks = Enumerable.Range(0, n).Select(i => WorkerHarness.Image(job, $"r{i}", seed: i)).ToList();
        await h.SubmitAsync(job, tasks);

        // The first worker renders slowly and is stopped while its first batch is in the engine; its drain time is short.
        var slow = new DeterministicTestRenderEngine { RenderDelay = TimeSpan.FromSeconds(30) };
        var first = h.Worker(new WorkerOptions { BatchSize = 4, DrainTimeout = TimeSpan.FromMilliseconds(200) }, engine: slow);
        await first.StartAsync(CancellationToken.None);
        await h.WaitUntilAsync(async () => (await h.State.GetJobAsync(job))!.Counts.Rendering > 0, "the first batch to start rendering");
        var stopping = DateTime.UtcNow;
        await first.StopAsync(CancellationToken.None);
        Assert.True(DateTime.UtcNow - stopping < TimeSpan.FromSeconds(10), "stopping waited for the render instead of the drain timeout");
        Assert.Equal(0, slow.RenderedTasks);
        var afterStop = (await h.State.GetJobAsync(job))!;
        Assert.Equal((0, n), (afterStop.Counts.Rendering, afterStop.Counts.Queued)); // released, not lost

        var second = h.Worker();
        await second.StartAsync(CancellationToken.None);
        var ended = await h.WaitForJobEndAsync(job);
        await second.StopAsync(CancellationToken.None);

        Assert.Equal((JobStatuses.Done, n), (ended.Status, ended.Counts.Done));
        await AssertExactlyOneIntactOutputPerItemAsync(h, job, tasks);
        var attempts = new List<int>();
        await foreach (var item in h.State.GetItemsAsync(job)) attempts.Add(item.Attempts);
        Assert.Contains(2, attempts); // the abandoned ones were tried again
    }

    [Fact]
    public async Task Locks_are_renewed_while_rendering_so_another_worker_does_not_get_the_task()
    {
        // 4 s, renewed every 2 s: a 2-s lock lapsed once when a loaded CI machine delayed a renewal by a second.
        var h = new WorkerHarness(azurite, "renew", lockDuration: TimeSpan.FromSeconds(4));
        const string job = "renew-job";
        await h.SubmitAsync(job, [WorkerHarness.Image(job, "slow")]);
        var slow = new DeterministicTestRenderEngine { RenderDelay = TimeSpan.FromSeconds(12) }; // three lock durations
        var other = new DeterministicTestRenderEngine();
        var a = h.Worker(engine: slow);
        var b = h.Worker(engine: other);
        await a.StartAsync(CancellationToken.None);
        await h.WaitUntilAsync(async () => (await h.State.GetJobAsync(job))!.Counts.Rendering == 1, "the render to start");
        await b.StartAsync(CancellationToken.None);
        await h.WaitForJobEndAsync(job);
        await Task.WhenAll(a.StopAsync(CancellationToken.None), b.StopAsync(CancellationToken.None));

        Assert.Equal((1, 0), (slow.RenderedTasks, other.RenderedTasks));
        Assert.Equal(1, (await h.State.GetItemAsync(job, "slow"))!.Attempts);
        Assert.Equal(0, await h.QueueLengthAsync());
    }

    [Fact]
    public async Task A_render_that_overruns_the_render_timeout_is_released_and_dead_lettered_on_its_last_delivery()
    {
        var h = new WorkerHarness(azurite, "overrun", maxDeliveryCount: 2);
        const string job = "overrun-job";
        await h.SubmitAsync(job, [WorkerHarness.Image(job, "stuck")]);
        var stuck = new DeterministicTestRenderEngine { RenderDelay = TimeSpan.FromMinutes(10) };
        var worker = h.Worker(new WorkerOptions { BatchSize = 4, RenderTimeout = TimeSpan.FromMilliseconds(300), DrainTimeout = TimeSpan.FromSeconds(5) }, engine: stuck);
        await worker.StartAsync(CancellationToken.None);
        var ended = await h.WaitForJobEndAsync(job, TimeSpan.FromSeconds(60));
        await worker.StopAsync(CancellationToken.None);

        Assert.Equal((JobStatuses.Failed, 1), (ended.Status, ended.Counts.DeadLettered));
        var item = (await h.State.GetItemAsync(job, "stuck"))!;
        Assert.Equal(2, item.Attempts);
        Assert.Contains("Worker:RenderTimeout", item.LastError);
        Assert.Equal(0, stuck.RenderedTasks);
        Assert.Equal(0, await h.QueueLengthAsync());
    }

    internal static async Task AssertExactlyOneIntactOutputPerItemAsync(WorkerHarness h, string job, IReadOnlyList<RenderTaskMessage> tasks)
    {
        var blobs = (await h.ListRendersAsync(job + "/")).Select(b => b.Name).Where(n => !n.StartsWith($"{job}/{BlobLayout.JobFolder}/")).ToList();
        var expected = tasks.SelectMany(t => new[] { BlobLayout.Image(job, t.ItemId), BlobLayout.Sidecar(job, t.ItemId) }).Order().ToList();
        Assert.Equal(expected, blobs.Order());
        var done = 0;
        foreach (var task in tasks)
        {
            var sidecar = await h.SidecarAsync(job, task.ItemId);
            var png = await h.DownloadAsync(BlobLayout.Image(job, task.ItemId));
            Assert.Equal(Assert.Single(sidecar.Outputs).Sha256, WorkerHarness.Sha256(png));
            Assert.Equal(DeterministicTestRenderEngine.Render(task).Png, png); // not corrupt: exactly what was rendered
            var item = (await h.State.GetItemAsync(job, task.ItemId))!;
            Assert.Equal(ItemStates.Done, item.State);
            done++;
        }
        var counts = (await h.State.GetJobAsync(job))!.Counts;
        Assert.Equal(done, counts.Done);
        Assert.Equal(blobs.Count(b => b.EndsWith(".png")), counts.Done);
    }
}
