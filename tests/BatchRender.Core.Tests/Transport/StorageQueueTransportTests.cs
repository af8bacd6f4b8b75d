using Azure.Storage.Queues;
using BatchRender.Core.Configuration;
using BatchRender.Core.Tests.Infrastructure;
using BatchRender.Core.Transport;

namespace BatchRender.Core.Tests.Transport;

/// <summary>The transport contract on Azure Storage Queues (Azurite).</summary>
public sealed class StorageQueueTransportTests(AzuriteFixture azurite) : TransportContractTests, IClassFixture<AzuriteFixture>
{
    protected override Task<TransportUnderTest> CreateTransportAsync(TimeSpan lockDuration, int maxDeliveryCount)
    {
        var name = AzuriteFixture.UniqueName("tasks");
        var options = new TransportOptions
        {
            QueueName = name, PoisonQueueName = name + "-poison", LockDuration = lockDuration, MaxDeliveryCount = maxDeliveryCount,
        };
        var service = azurite.QueueService();
        return Task.FromResult(new TransportUnderTest(
            new StorageQueueTaskSender(service, options), new StorageQueueTaskReceiver(service, options), options,
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
}
