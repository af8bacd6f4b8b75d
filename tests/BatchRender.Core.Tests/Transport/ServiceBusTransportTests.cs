using Azure.Messaging.ServiceBus;
using Azure.Messaging.ServiceBus.Administration;
using BatchRender.Core.Configuration;
using BatchRender.Core.Transport;

namespace BatchRender.Core.Tests.Transport;

/// <summary>
/// The transport contract on Azure Service Bus. Needs a namespace: set BATCHRENDER_TEST_SERVICEBUS to a connection
/// string with Manage rights (each test creates and deletes a queue of its own); otherwise every test is skipped with
/// that reason.
/// </summary>
public sealed class ServiceBusTransportTests : TransportContractTests
{
    public const string ConnectionVariable = "BATCHRENDER_TEST_SERVICEBUS";

    private static string RequireConnectionString()
    {
        var connection = Environment.GetEnvironmentVariable(ConnectionVariable);
        Skip.If(string.IsNullOrWhiteSpace(connection),
            $"{ConnectionVariable} is not set: the Service Bus transport tests need a namespace connection string with Manage rights.");
        return connection!;
    }

    protected override async Task<TransportUnderTest> CreateTransportAsync(TimeSpan lockDuration, int maxDeliveryCount,
        Func<DeadLetteredTask, CancellationToken, Task>? onDeliveriesExceeded = null)
    {
        var connection = RequireConnectionString();
        var name = "batchrender-test-" + Guid.NewGuid().ToString("N")[..12];
        var admin = new ServiceBusAdministrationClient(connection);
        await admin.CreateQueueAsync(new CreateQueueOptions(name)
        {
            LockDuration = lockDuration,
            MaxDeliveryCount = maxDeliveryCount + 1,   // as bicep/modules/servicebus.bicep deploys it: the receiver keeps the limit
            RequiresDuplicateDetection = true,
            DuplicateDetectionHistoryTimeWindow = TimeSpan.FromMinutes(10),
        });
        var options = new TransportOptions
        {
            Kind = TransportKind.ServiceBus, QueueName = name, LockDuration = lockDuration, MaxDeliveryCount = maxDeliveryCount,
        };
        var client = new ServiceBusClient(connection);
        return new TransportUnderTest(new ServiceBusTaskSender(client, options), new ServiceBusTaskReceiver(client, options, onDeliveriesExceeded), options,
            async () =>
            {
                await client.DisposeAsync();
                await admin.DeleteQueueAsync(name);
            });
    }

    [SkippableFact]
    public async Task Duplicate_detection_drops_a_task_sent_again_with_the_same_message_id()
    {
        await using var transport = await CreateTransportAsync(TimeSpan.FromMinutes(1), 5);
        var task = new OutgoingTask("same-id", BinaryData.FromString("{}"), new Dictionary<string, string>());
        await transport.Sender.SendAsync([task]);
        await transport.Sender.SendAsync([task]);
        var first = Assert.Single(await transport.Receiver.ReceiveAsync(10, TimeSpan.FromSeconds(5)));
        await first.CompleteAsync();
        Assert.Empty(await transport.Receiver.ReceiveAsync(10, TimeSpan.FromSeconds(3)));
    }
}
