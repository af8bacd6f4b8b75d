using Azure.Core;
using Azure.Core.Pipeline;
using BatchRender.Core.Configuration;
using BatchRender.Core.Messages;
using BatchRender.Core.State;
using BatchRender.Core.Tests.Infrastructure;
using BatchRender.Worker.Rendering;
using BatchRender.Worker.Tests.Infrastructure;

namespace BatchRender.Worker.Tests;

/// <summary>
/// The worker's stages overlap: the next batch is received and admitted while the current one renders, and a batch's
/// writes (PNGs, sidecars, item state, settlement) run behind the next batch's render, so the model waits on neither the
/// queue nor storage; <c>Worker:BatchesWriting = 0</c> runs each batch to the end before receiving the next. Observed by order,
/// not by time: blob writes are slowed, and the engine notes how many sidecars had landed when each render began.
/// </summary>
public sealed class WorkerOverlapTests(AzuriteFixture azurite) : IClassFixture<AzuriteFixture>
{
    [Theory]
    [InlineData(2)]
    [InlineData(0)]
    public async Task The_next_batch_renders_while_the_previous_one_writes_unless_BatchesWriting_is_0(int batchesWriting)
    {
        var h = new WorkerHarness(azurite, $"overlap{batchesWriting}");
        var job = $"overlap-{batchesWriting}";
        var tasks = Enumerable.Range(0, 8).Select(i => WorkerHarness.Image(job, $"o{i}", seed: i)).ToList();
        await h.SubmitAsync(job, tasks);

        // Each blob write takes 0.6 s (under the writer's 1 s attempt timeout): an item's PNG and sidecar 1.2 s.
        var slowWrites = new SlowBlobWrites(TimeSpan.FromMilliseconds(600));
        var engine = new RenderStartRecorder(h.Engine, slowWrites);
        var worker = h.Worker(new WorkerOptions { BatchSize = 4, BatchesWriting = batchesWriting, DrainTimeout = TimeSpan.FromSeconds(10) },
                              slowWrites, engine);
        await worker.StartAsync(CancellationToken.None);
        var ended = await h.WaitForJobEndAsync(job, TimeSpan.FromSeconds(90));
        await worker.StopAsync(CancellationToken.None);

        Assert.Equal((JobStatuses.Done, 8), (ended.Status, ended.Counts.Done));
        var starts = engine.Starts.ToList();
        Assert.True(starts.Count >= 2, $"{starts.Count} render(s)");
        var (firstBatch, sidecarsAtSecondRender) = (starts[0].GroupSize, starts[1].SidecarsWritten);
        if (batchesWriting == 0)
            Assert.Equal(firstBatch, sidecarsAtSecondRender);                  // the first batch was written in full first
        else
            Assert.True(sidecarsAtSecondRender < firstBatch,                   // the second render did not wait for them
                $"{sidecarsAtSecondRender} of the first batch's {firstBatch} sidecars were written before the second render");
        await WorkerFaultTests.AssertExactlyOneIntactOutputPerItemAsync(h, job, tasks);
    }

    [Fact]
    public async Task The_next_batch_is_received_and_admitted_while_the_current_one_renders()
    {
        var h = new WorkerHarness(azurite, "prefetch");
        const string job = "prefetch-job";
        var tasks = Enumerable.Range(0, 8).Select(i => WorkerHarness.Image(job, $"p{i}", seed: i)).ToList();
        await h.SubmitAsync(job, tasks);

        var engine = new GatedEngine(h.Engine);   // the first render waits until the test opens the gate
        var worker = h.Worker(new WorkerOptions { BatchSize = 4, DrainTimeout = TimeSpan.FromSeconds(10) }, engine: engine);
        await worker.StartAsync(CancellationToken.None);
        await h.WaitUntilAsync(async () => (await h.State.GetJobAsync(job))!.Counts.Rendering == 8, "the second batch to be admitted during the first render");
        Assert.Equal(1, engine.Calls);
        engine.Open();
        var ended = await h.WaitForJobEndAsync(job);
        await worker.StopAsync(CancellationToken.None);

        Assert.Equal((JobStatuses.Done, 8), (ended.Status, ended.Counts.Done));
        await WorkerFaultTests.AssertExactlyOneIntactOutputPerItemAsync(h, job, tasks);
    }

    private sealed class GatedEngine(IRenderEngine inner) : IRenderEngine
    {
        private readonly TaskCompletionSource _gate = new(TaskCreationOptions.RunContinuationsAsynchronously);
        private int _calls;
        public int Calls => Volatile.Read(ref _calls);
        public void Open() => _gate.TrySetResult();

        public Task PreloadAsync(string model, string quantization, CancellationToken cancellationToken = default) =>
            inner.PreloadAsync(model, quantization, cancellationToken);

        public async Task<IReadOnlyList<TaskRenderOutcome>> RenderAsync(IReadOnlyList<RenderTaskMessage> group, CancellationToken cancellationToken = default)
        {
            Interlocked.Increment(ref _calls);
            await _gate.Task.WaitAsync(cancellationToken);
            return await inner.RenderAsync(group, cancellationToken);
        }
    }

    /// <summary>Delays every blob upload and counts the item sidecars (<c>{job}/{item}.json</c>) that landed.</summary>
    private sealed class SlowBlobWrites(TimeSpan delay) : HttpPipelinePolicy
    {
        private int _sidecars;
        public int SidecarsWritten => Volatile.Read(ref _sidecars);

        public override void Process(HttpMessage message, ReadOnlyMemory<HttpPipelinePolicy> pipeline) =>
            ProcessAsync(message, pipeline).AsTask().GetAwaiter().GetResult();

        public override async ValueTask ProcessAsync(HttpMessage message, ReadOnlyMemory<HttpPipelinePolicy> pipeline)
        {
            bool upload = message.Request.Method == RequestMethod.Put;
            if (upload) await Task.Delay(delay, message.CancellationToken);
            await ProcessNextAsync(message, pipeline);
            var path = message.Request.Uri.Path;
            if (upload && message.Response.Status == 201 && path.EndsWith(".json", StringComparison.Ordinal) && !path.Contains("/_job/", StringComparison.Ordinal))
                Interlocked.Increment(ref _sidecars);
        }
    }

    private sealed class RenderStartRecorder(IRenderEngine inner, SlowBlobWrites writes) : IRenderEngine
    {
        public System.Collections.Concurrent.ConcurrentQueue<(int GroupSize, int SidecarsWritten)> Starts { get; } = new();

        public Task PreloadAsync(string model, string quantization, CancellationToken cancellationToken = default) =>
            inner.PreloadAsync(model, quantization, cancellationToken);

        public Task<IReadOnlyList<TaskRenderOutcome>> RenderAsync(IReadOnlyList<RenderTaskMessage> group, CancellationToken cancellationToken = default)
        {
            Starts.Enqueue((group.Count, writes.SidecarsWritten));
            return inner.RenderAsync(group, cancellationToken);
        }
    }
}
