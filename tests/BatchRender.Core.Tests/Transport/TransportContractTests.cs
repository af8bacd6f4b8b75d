using System.Diagnostics;
using BatchRender.Core.Configuration;
using BatchRender.Core.Telemetry;
using BatchRender.Core.Transport;

namespace BatchRender.Core.Tests.Transport;

/// <summary>A transport on a fresh queue of its own; disposing deletes the queue.</summary>
public sealed record TransportUnderTest(
    IRenderTaskSender Sender, IRenderTaskReceiver Receiver, TransportOptions Options, Func<Task> DeleteQueues) : IAsyncDisposable
{
    public async ValueTask DisposeAsync()
    {
        await Sender.DisposeAsync();
        await Receiver.DisposeAsync();
        await DeleteQueues();
    }
}

/// <summary>
/// What every transport must do, run against each real implementation (Storage Queues on Azurite; Service Bus when
/// a namespace is configured). Duplicate detection is not part of the contract: Service Bus has it, Storage Queues
/// rely on idempotent state and outputs.
/// </summary>
public abstract class TransportContractTests
{
    /// <summary>A transport on a new, empty queue with the given lock duration and maximum delivery count (deployed as
    /// production deploys it), whose receiver reports tasks it dead-letters for too many deliveries to
    /// <paramref name="onDeliveriesExceeded"/>.</summary>
    protected abstract Task<TransportUnderTest> CreateTransportAsync(TimeSpan lockDuration, int maxDeliveryCount,
        Func<DeadLetteredTask, CancellationToken, Task>? onDeliveriesExceeded = null);

    private static OutgoingTask Sample(int i, string job = "job-1") => new(
        $"msg-{i:D5}", BinaryData.FromString($$"""{"n":{{i}},"text":"蓝色 {{i}}"}"""),
        new Dictionary<string, string> { [TaskProperties.JobId] = job, [TaskProperties.ItemId] = $"item-{i}" });

    private static async Task<List<IReceivedTask>> ReceiveAllAsync(IRenderTaskReceiver receiver, int expected, TimeSpan timeout)
    {
        var all = new List<IReceivedTask>();
        var clock = Stopwatch.StartNew();
        while (all.Count < expected && clock.Elapsed < timeout)
            all.AddRange(await receiver.ReceiveAsync(expected - all.Count, TimeSpan.FromSeconds(2)));
        return all;
    }

    [SkippableFact]
    public async Task Every_sent_task_is_received_once_with_its_message_id_body_and_properties()
    {
        await using var transport = await CreateTransportAsync(TimeSpan.FromMinutes(1), 5);
        var sent = Enumerable.Range(0, 120).Select(i => Sample(i)).ToList();
        await transport.Sender.SendAsync(sent);

        var received = await ReceiveAllAsync(transport.Receiver, sent.Count, TimeSpan.FromSeconds(30));
        Assert.Equal(sent.Select(t => t.MessageId).Order(), received.Select(t => t.MessageId).Order());
        foreach (var task in received)
        {
            var original = sent.Single(t => t.MessageId == task.MessageId);
            Assert.Equal(original.Body.ToString(), task.Body.ToString());
            Assert.Equal("job-1", task.Properties[TaskProperties.JobId]);
            Assert.Equal(original.Properties[TaskProperties.ItemId], task.Properties[TaskProperties.ItemId]);
            Assert.Equal(1, task.DeliveryCount);
            Assert.True(task.LockedUntil > DateTimeOffset.UtcNow);
        }
        await Task.WhenAll(received.Select(t => t.CompleteAsync()));
        Assert.Empty(await transport.Receiver.ReceiveAsync(10, TimeSpan.FromSeconds(1)));
    }

    [SkippableFact]
    public async Task Receive_returns_at_most_the_requested_number_and_waits_no_longer_than_asked_when_empty()
    {
        await using var transport = await CreateTransportAsync(TimeSpan.FromMinutes(1), 5);
        var clock = Stopwatch.StartNew();
        Assert.Empty(await transport.Receiver.ReceiveAsync(4, TimeSpan.FromSeconds(1)));
        Assert.InRange(clock.Elapsed, TimeSpan.FromSeconds(0.5), TimeSpan.FromSeconds(10));

        await transport.Sender.SendAsync(Enumerable.Range(0, 10).Select(i => Sample(i)).ToList());
        var first = await ReceiveAllAsync(transport.Receiver, 4, TimeSpan.FromSeconds(20));
        Assert.Equal(4, first.Count);
        await Task.WhenAll(first.Select(t => t.CompleteAsync()));
    }

    [SkippableFact]
    public async Task An_abandoned_task_comes_back_with_a_higher_delivery_count()
    {
        await using var transport = await CreateTransportAsync(TimeSpan.FromMinutes(1), 5);
        await transport.Sender.SendAsync([Sample(1)]);
        var first = Assert.Single(await ReceiveAllAsync(transport.Receiver, 1, TimeSpan.FromSeconds(20)));
        await first.AbandonAsync();

        var again = Assert.Single(await ReceiveAllAsync(transport.Receiver, 1, TimeSpan.FromSeconds(20)));
        Assert.Equal(first.MessageId, again.MessageId);
        Assert.Equal(2, again.DeliveryCount);
        Assert.Equal(first.Body.ToString(), again.Body.ToString());
        await again.CompleteAsync();
    }

    [SkippableFact]
    public async Task A_dead_lettered_task_keeps_its_reason_and_description_and_is_not_delivered_again()
    {
        await using var transport = await CreateTransportAsync(TimeSpan.FromMinutes(1), 5);
        await transport.Sender.SendAsync([Sample(1), Sample(2)]);
        var received = await ReceiveAllAsync(transport.Receiver, 2, TimeSpan.FromSeconds(20));
        var poisoned = received.Single(t => t.MessageId == "msg-00001");
        await poisoned.DeadLetterAsync(DeadLetterReasons.UnknownModel, "model 'nope' is not served by this worker pool");
        await received.Single(t => t.MessageId == "msg-00002").CompleteAsync();

        Assert.Empty(await transport.Receiver.ReceiveAsync(5, TimeSpan.FromSeconds(1)));
        var dead = Assert.Single(await transport.Receiver.PeekDeadLettersAsync(10));
        Assert.Equal("msg-00001", dead.MessageId);
        Assert.Equal(DeadLetterReasons.UnknownModel, dead.Reason);
        Assert.Equal("model 'nope' is not served by this worker pool", dead.Description);
        Assert.Equal("item-1", dead.Properties[TaskProperties.ItemId]);
        Assert.Equal(Sample(1).Body.ToString(), dead.Body.ToString());
    }

    [SkippableFact]
    public async Task A_task_delivered_more_than_the_maximum_is_dead_lettered_and_reported()
    {
        var reported = new List<DeadLetteredTask>();
        await using var transport = await CreateTransportAsync(TimeSpan.FromMinutes(1), maxDeliveryCount: 2,
            (task, _) => { lock (reported) reported.Add(task); return Task.CompletedTask; });
        await transport.Sender.SendAsync([Sample(7)]);
        for (var delivery = 1; delivery <= 2; delivery++)
        {
            var task = Assert.Single(await ReceiveAllAsync(transport.Receiver, 1, TimeSpan.FromSeconds(20)));
            Assert.Equal(delivery, task.DeliveryCount);
            await task.AbandonAsync();
        }
        Assert.Empty(await transport.Receiver.ReceiveAsync(1, TimeSpan.FromSeconds(2)));
        var dead = Assert.Single(await transport.Receiver.PeekDeadLettersAsync(10));
        Assert.Equal("msg-00007", dead.MessageId);
        Assert.Equal(DeadLetterReasons.MaxDeliveryCountExceeded, dead.Reason);
        // Reported with the item's properties, so its state can be dead-lettered too (the worker never saw it).
        var report = Assert.Single(reported);
        Assert.Equal(("msg-00007", "item-7", DeadLetterReasons.MaxDeliveryCountExceeded), (report.MessageId, report.Properties[TaskProperties.ItemId], report.Reason));
        Assert.Contains("delivered 2 times", report.Description);
    }

    [SkippableFact]
    public async Task Renewing_the_lock_keeps_the_task_hidden_and_an_expired_lock_redelivers_it()
    {
        var lockDuration = TimeSpan.FromSeconds(5); // Service Bus' minimum
        await using var transport = await CreateTransportAsync(lockDuration, 5);
        await transport.Sender.SendAsync([Sample(1)]);
        var task = Assert.Single(await ReceiveAllAsync(transport.Receiver, 1, TimeSpan.FromSeconds(20)));

        // Held for 1.6 lock durations by renewing: nobody else receives it.
        for (var i = 0; i < 4; i++)
        {
            await Task.Delay(lockDuration * 0.4);
            var before = task.LockedUntil;
            await task.RenewLockAsync();
            Assert.True(task.LockedUntil >= before);
            Assert.Empty(await transport.Receiver.ReceiveAsync(1, TimeSpan.Zero));
        }

        // Left alone, the lock expires and the task is delivered again; the first holder can no longer settle it.
        var again = Assert.Single(await ReceiveAllAsync(transport.Receiver, 1, lockDuration * 3));
        Assert.Equal(task.MessageId, again.MessageId);
        Assert.Equal(2, again.DeliveryCount);
        await Assert.ThrowsAsync<TaskLockLostException>(() => task.CompleteAsync());
        await again.CompleteAsync();
        Assert.Empty(await transport.Receiver.ReceiveAsync(1, TimeSpan.FromSeconds(1)));
    }

    [SkippableFact]
    public async Task The_trace_context_travels_with_the_task()
    {
        await using var transport = await CreateTransportAsync(TimeSpan.FromMinutes(1), 5);
        using var listener = new ActivityListener
        {
            ShouldListenTo = s => s.Name == BatchRenderTelemetry.Name,
            Sample = (ref ActivityCreationOptions<ActivityContext> _) => ActivitySamplingResult.AllDataAndRecorded,
        };
        ActivitySource.AddActivityListener(listener);

        ActivityTraceId traceId;
        using (var ingest = BatchRenderTelemetry.ActivitySource.StartActivity("ingest", ActivityKind.Producer))
        {
            Assert.NotNull(ingest);
            traceId = ingest.TraceId;
            await transport.Sender.SendAsync([OutgoingTasks.From(new Core.Messages.RenderTaskMessage("job-t", "item-t", "demo",
                Core.Messages.RenderTaskKinds.Image, new Core.Messages.RenderTaskParams { Prompt = "p", Sampler = "ddim", Quantization = "none" }))]);
        }

        var received = Assert.Single(await ReceiveAllAsync(transport.Receiver, 1, TimeSpan.FromSeconds(20)));
        using (var render = BatchRenderTelemetry.StartFromMessage("render", received.Properties))
        {
            Assert.NotNull(render);
            Assert.Equal(traceId, render.TraceId);
        }
        Assert.Equal("job-t", received.Properties[TaskProperties.JobId]);
        await received.CompleteAsync();
    }
}
