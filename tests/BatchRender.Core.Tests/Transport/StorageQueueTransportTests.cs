using Azure.Storage.Queues;
using BatchRender.Core.Configuration;
using BatchRender.Core.Tests.Infrastructure;
using BatchRender.Core.Transport;

namespace BatchRender.Core.Tests.Transport;

/// <summary>The transport contract on Azure Storage Queues (Azurite).</summary>
public sealed class StorageQueueTransportTests(AzuriteFixture azurite) : TransportContractTests, IClassFixture<AzuriteFixture>
{
    protected override Task<TransportUnderTest> CreateTransportAsync(TimeSpan lockDuration, int maxDeliveryCount,
        Func<DeadLetteredTask, CancellationToken, Task>? onDeliveriesExceeded = null)
    {
        var name = AzuriteFixture.UniqueName("tasks");
        var options = new TransportOptions
        {
            QueueName = name, PoisonQueueName = name + "-poison", LockDuration = lockDuration, MaxDeliveryCount = maxDeliveryCount,
        };
        var service = azurite.QueueService();
        return Task.FromResult(new TransportUnderTest(
            new StorageQueueTaskSender(service, options), new StorageQueueTaskReceiver(service, options, onDeliveriesExceeded: onDeliveriesExceeded), options,
            async () =>
            {
                await service.GetQueueClient(options.QueueName).DeleteIfExistsAsync();
                await service.GetQueueClient(options.PoisonQueueName).DeleteIfExistsAsync();
            }));
    }

    [Fact]
    public async Task A_message_that_is_not_an_envelope_is_delivered_raw_so_the_worker_can_dead_letter_it()
    {
        await using var transport = await CreateTransportAsync(TimeSpan.FromMinutes(1), 5);
        var queue = azurite.QueueService().GetQueueClient(transport.Options.QueueName);
        await queue.CreateIfNotExistsAsync();
        await queue.SendMessageAsync("hello, not base64 JSON");

        var task = Assert.Single(await transport.Receiver.ReceiveAsync(1, TimeSpan.FromSeconds(5)));
        Assert.Empty(task.Properties);
        Assert.Equal("hello, not base64 JSON", task.Body.ToString());
        Assert.Null(OutgoingTasks.TryParse(task.Body, out var error));
        Assert.Contains("not valid JSON", error);
        await task.DeadLetterAsync(DeadLetterReasons.Unparseable, error!);
        var dead = Assert.Single(await transport.Receiver.PeekDeadLettersAsync(5));
        Assert.Equal(DeadLetterReasons.Unparseable, dead.Reason);
    }

    [Fact]
    public async Task Messages_on_the_queue_are_base64_json_envelopes_readable_by_other_tools()
    {
        await using var transport = await CreateTransportAsync(TimeSpan.FromMinutes(1), 5);
        await transport.Sender.SendAsync([new OutgoingTask("id-1", BinaryData.FromString("{\"a\":1}"),
            new Dictionary<string, string> { ["jobId"] = "j" })]);
        var peeked = (await azurite.QueueService().GetQueueClient(transport.Options.QueueName).PeekMessageAsync()).Value;
        using var json = System.Text.Json.JsonDocument.Parse(Convert.FromBase64String(peeked.MessageText));
        Assert.Equal("id-1", json.RootElement.GetProperty("messageId").GetString());
        Assert.Equal("j", json.RootElement.GetProperty("properties").GetProperty("jobId").GetString());
        Assert.Equal("{\"a\":1}", System.Text.Encoding.UTF8.GetString(json.RootElement.GetProperty("body").GetBytesFromBase64()));
    }

    private static OutgoingTask Sample(int i, int bodyBytes = 0) => new($"msg-{i}",
        BinaryData.FromString($$"""{"n":{{i}},"pad":"{{new string('x', bodyBytes)}}"}"""),
        new Dictionary<string, string> { [TaskProperties.JobId] = "j", [TaskProperties.ItemId] = $"item-{i}" });

    [Fact]
    public void Tasks_are_packed_in_order_up_to_the_configured_count_and_the_message_size_limit()
    {
        var small = StorageQueueTaskSender.Pack(Enumerable.Range(0, 10).Select(i => Sample(i)).ToList(), tasksPerMessage: 4);
        Assert.Equal([4, 4, 2], small.Select(m => StorageQueueEnvelope.TryDecodeMessage(m)!.Count));
        Assert.Equal(Enumerable.Range(0, 10).Select(i => $"msg-{i}"),
            small.SelectMany(m => StorageQueueEnvelope.TryDecodeMessage(m)!).Select(e => e.MessageId));

        // 20 KB bodies: two would exceed the 64 KiB of base64 a queue message may hold, so one per message.
        var large = StorageQueueTaskSender.Pack(Enumerable.Range(0, 3).Select(i => Sample(i, 20_000)).ToList(), tasksPerMessage: 4);
        Assert.Equal(3, large.Count);
        var mixed = StorageQueueTaskSender.Pack([Sample(0, 20_000), Sample(1), Sample(2), Sample(3, 20_000), Sample(4)], tasksPerMessage: 8);
        Assert.All(mixed, m => Assert.InRange(m.Length, 1, StorageQueueEnvelope.MaxMessageChars));
        Assert.Equal(5, mixed.Sum(m => StorageQueueEnvelope.TryDecodeMessage(m)!.Count));
        Assert.Equal(Sample(3, 20_000).Body.ToString(),
            BinaryData.FromBytes(mixed.SelectMany(m => StorageQueueEnvelope.TryDecodeMessage(m)!).Single(e => e.MessageId == "msg-3").Body).ToString());

        var tooLarge = Assert.Throws<InvalidOperationException>(() => StorageQueueTaskSender.Pack([Sample(9, 60_000)], 4));
        Assert.Contains("msg-9", tooLarge.Message);
    }

    [Fact]
    public async Task Tasks_sharing_a_message_are_settled_one_by_one_and_only_the_abandoned_come_back()
    {
        await using var transport = await CreateTransportAsync(TimeSpan.FromMinutes(1), 5);
        await transport.Sender.SendAsync(Enumerable.Range(0, 4).Select(i => Sample(i)).ToList());
        var queue = azurite.QueueService().GetQueueClient(transport.Options.QueueName);
        Assert.Equal(1, (await queue.GetPropertiesAsync()).Value.ApproximateMessagesCount);

        var received = await transport.Receiver.ReceiveAsync(4, TimeSpan.FromSeconds(5));
        Assert.Equal(["msg-0", "msg-1", "msg-2", "msg-3"], received.Select(t => t.MessageId));
        await received[0].CompleteAsync();
        await received[1].DeadLetterAsync(DeadLetterReasons.InvalidParameters, "steps: 0");
        await received[2].AbandonAsync();
        await Assert.ThrowsAsync<InvalidOperationException>(() => received[0].CompleteAsync());
        await received[3].RenewLockAsync();
        Assert.Empty(await transport.Receiver.ReceiveAsync(4, TimeSpan.Zero));   // still locked: msg-3 is in the works
        await received[3].CompleteAsync();

        var again = Assert.Single(await transport.Receiver.ReceiveAsync(4, TimeSpan.FromSeconds(5)));
        Assert.Equal(("msg-2", 2), (again.MessageId, again.DeliveryCount));
        Assert.Equal(Sample(2).Body.ToString(), again.Body.ToString());
        await again.CompleteAsync();
        Assert.Equal(0, (await queue.GetPropertiesAsync()).Value.ApproximateMessagesCount);
        var dead = Assert.Single(await transport.Receiver.PeekDeadLettersAsync(5));
        Assert.Equal(("msg-1", DeadLetterReasons.InvalidParameters, "steps: 0"), (dead.MessageId, dead.Reason, dead.Description));
    }

    [Fact]
    public async Task Tasks_of_a_message_settled_at_once_share_the_message_updates()
    {
        var name = AzuriteFixture.UniqueName("tasks");
        var options = new TransportOptions { QueueName = name, PoisonQueueName = name + "-poison", LockDuration = TimeSpan.FromMinutes(1) };
        var writes = new QueueWriteCounter();
        var clientOptions = new QueueClientOptions();
        clientOptions.AddPolicy(writes, Azure.Core.HttpPipelinePosition.PerCall);
        var service = azurite.QueueService(clientOptions);
        await new StorageQueueTaskSender(service, options).SendAsync(Enumerable.Range(0, 4).Select(i => Sample(i)).ToList());
        var received = await new StorageQueueTaskReceiver(service, options).ReceiveAsync(4, TimeSpan.FromSeconds(5));
        Assert.Equal(4, received.Count);

        writes.Reset();
        var settled = received.Select((t, i) => i == 2 ? t.DeadLetterAsync(DeadLetterReasons.InvalidParameters, "steps: 0") : t.CompleteAsync()).ToList();
        await Task.WhenAll(settled);
        // One at a time would be three rewrites and a delete (and the poison send); together, at most two of them.
        Assert.InRange(writes.Count, 2, 3);
        var queue = service.GetQueueClient(name);
        Assert.Equal(0, (await queue.GetPropertiesAsync()).Value.ApproximateMessagesCount);
        Assert.Equal("msg-2", Assert.Single(await new StorageQueueTaskReceiver(service, options).PeekDeadLettersAsync(5)).MessageId);
        await Assert.ThrowsAsync<InvalidOperationException>(() => received[0].CompleteAsync());
        await queue.DeleteAsync();
        await service.GetQueueClient(options.PoisonQueueName).DeleteAsync();
    }

    /// <summary>Counts the requests that change messages (sends, updates, deletes).</summary>
    private sealed class QueueWriteCounter : Azure.Core.Pipeline.HttpPipelineSynchronousPolicy
    {
        private int _count;
        public int Count => _count;
        public void Reset() => Interlocked.Exchange(ref _count, 0);

        public override void OnSendingRequest(Azure.Core.HttpMessage message)
        {
            if (message.Request.Method != Azure.Core.RequestMethod.Get && message.Request.Method != Azure.Core.RequestMethod.Head)
                Interlocked.Increment(ref _count);
        }
    }

    [Fact]
    public async Task A_worker_that_dies_mid_message_leaves_only_its_unfinished_tasks_to_be_delivered_again()
    {
        var lockDuration = TimeSpan.FromSeconds(2);
        await using var transport = await CreateTransportAsync(lockDuration, 5);
        await transport.Sender.SendAsync(Enumerable.Range(0, 4).Select(i => Sample(i)).ToList());
        var received = await transport.Receiver.ReceiveAsync(4, TimeSpan.FromSeconds(5));
        await received[1].CompleteAsync();
        await received[3].CompleteAsync();
        // ... and the worker is gone: the lock runs out.

        var clock = System.Diagnostics.Stopwatch.StartNew();
        var again = new List<IReceivedTask>();
        while (again.Count == 0 && clock.Elapsed < TimeSpan.FromSeconds(20))
            again.AddRange(await transport.Receiver.ReceiveAsync(4, TimeSpan.FromSeconds(2)));
        Assert.Equal(["msg-0", "msg-2"], again.Select(t => t.MessageId));
        Assert.All(again, t => Assert.Equal(2, t.DeliveryCount));
        await Assert.ThrowsAsync<TaskLockLostException>(() => received[0].CompleteAsync());
        foreach (var task in again) await task.CompleteAsync();
        Assert.Empty(await transport.Receiver.ReceiveAsync(4, TimeSpan.FromSeconds(1)));
    }

    [Fact]
    public async Task A_packed_message_is_a_base64_json_list_of_task_envelopes()
    {
        await using var transport = await CreateTransportAsync(TimeSpan.FromMinutes(1), 5);
        await transport.Sender.SendAsync([Sample(1), Sample(2)]);
        var peeked = (await azurite.QueueService().GetQueueClient(transport.Options.QueueName).PeekMessageAsync()).Value;
        using var json = System.Text.Json.JsonDocument.Parse(Convert.FromBase64String(peeked.MessageText));
        Assert.Equal(2, json.RootElement.GetProperty("v").GetInt32());
        var tasks = json.RootElement.GetProperty("tasks").EnumerateArray().ToList();
        Assert.Equal(["msg-1", "msg-2"], tasks.Select(t => t.GetProperty("messageId").GetString()));
        Assert.Equal("item-2", tasks[1].GetProperty("properties").GetProperty("itemId").GetString());
    }
}
