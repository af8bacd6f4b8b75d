using Azure.Messaging.ServiceBus;
using BatchRender.Core.Configuration;

namespace BatchRender.Core.Transport;

// Azure Service Bus as the task transport (production): batched sends with MessageId for the queue's duplicate
// detection, peek-lock receive with lock renewal, and the broker's dead-letter sub-queue with reason and description.

public sealed class ServiceBusTaskSender(ServiceBusClient client, TransportOptions options) : IRenderTaskSender
{
    private readonly ServiceBusSender _sender = client.CreateSender(options.QueueName);

    public async Task SendAsync(IReadOnlyList<OutgoingTask> tasks, CancellationToken cancellationToken = default)
    {
        var batch = await _sender.CreateMessageBatchAsync(cancellationToken);
        try
        {
            foreach (var task in tasks)
            {
                var message = ToMessage(task);
                if (batch.TryAddMessage(message)) continue;
                if (batch.Count == 0)
                    throw new InvalidOperationException($"Task {task.MessageId} is larger than a Service Bus message may be ({batch.MaxSizeInBytes} bytes).");
                await _sender.SendMessagesAsync(batch, cancellationToken);
                batch.Dispose();
                batch = await _sender.CreateMessageBatchAsync(cancellationToken);
                if (!batch.TryAddMessage(message))
                    throw new InvalidOperationException($"Task {task.MessageId} is larger than a Service Bus message may be ({batch.MaxSizeInBytes} bytes).");
            }
            if (batch.Count > 0)
                await _sender.SendMessagesAsync(batch, cancellationToken);
        }
        finally
        {
            batch.Dispose();
        }
    }

    private static ServiceBusMessage ToMessage(OutgoingTask task)
    {
        var message = new ServiceBusMessage(task.Body) { MessageId = task.MessageId, ContentType = "application/json" };
        foreach (var (key, value) in task.Properties)
            message.ApplicationProperties[key] = value;
        if (task.Properties.TryGetValue(TaskProperties.JobId, out var jobId))
            message.CorrelationId = jobId;
        return message;
    }

    public ValueTask DisposeAsync() => _sender.DisposeAsync();
}

/// <param name="onDeliveriesExceeded">Called after a task delivered too often is dead-lettered at receive (<see cref="DeliveryLimit"/>).</param>
public sealed class ServiceBusTaskReceiver(ServiceBusClient client, TransportOptions options,
    Func<DeadLetteredTask, CancellationToken, Task>? onDeliveriesExceeded = null) : IRenderTaskReceiver
{
    private readonly ServiceBusReceiver _receiver = client.CreateReceiver(options.QueueName,
        new ServiceBusReceiverOptions { ReceiveMode = ServiceBusReceiveMode.PeekLock });
    private readonly ServiceBusReceiver _deadLetters = client.CreateReceiver(options.QueueName,
        new ServiceBusReceiverOptions { SubQueue = SubQueue.DeadLetter });

    public async Task<IReadOnlyList<IReceivedTask>> ReceiveAsync(int maxTasks, TimeSpan maxWait, CancellationToken cancellationToken = default)
    {
        var messages = await _receiver.ReceiveMessagesAsync(maxTasks, maxWait, cancellationToken);
        var received = new List<IReceivedTask>(messages.Count);
        foreach (var message in messages)
        {
            var task = new ServiceBusReceivedTask(_receiver, message);
            if (DeliveryLimit.IsExceeded(task, options))
                await DeliveryLimit.DeadLetterAsync(task, options, onDeliveriesExceeded, cancellationToken);
            else
                received.Add(task);
        }
        return received;
    }

    public async Task<IReadOnlyList<DeadLetteredTask>> PeekDeadLettersAsync(int maxTasks, CancellationToken cancellationToken = default)
    {
        var messages = await _deadLetters.PeekMessagesAsync(maxTasks, fromSequenceNumber: 0, cancellationToken);
        return messages.Select(m => new DeadLetteredTask(m.MessageId, m.Body, ServiceBusReceivedTask.StringProperties(m),
            m.DeadLetterReason, m.DeadLetterErrorDescription, m.DeliveryCount)).ToList();
    }

    public async ValueTask DisposeAsync()
    {
        await _receiver.DisposeAsync();
        await _deadLetters.DisposeAsync();
    }
}

internal sealed class ServiceBusReceivedTask(ServiceBusReceiver receiver, ServiceBusReceivedMessage message) : IReceivedTask
{
    public string MessageId => message.MessageId;
    public BinaryData Body => message.Body;
    public int DeliveryCount => message.DeliveryCount;
    public IReadOnlyDictionary<string, string> Properties { get; } = StringProperties(message);
    public DateTimeOffset LockedUntil { get; private set; } = message.LockedUntil;

    public Task CompleteAsync(CancellationToken cancellationToken = default) =>
        Settle(() => receiver.CompleteMessageAsync(message, cancellationToken));

    public Task AbandonAsync(CancellationToken cancellationToken = default) =>
        Settle(() => receiver.AbandonMessageAsync(message, cancellationToken: cancellationToken));

    public Task DeadLetterAsync(string reason, string description, CancellationToken cancellationToken = default) =>
        Settle(() => receiver.DeadLetterMessageAsync(message, reason, description, cancellationToken));

    public Task RenewLockAsync(CancellationToken cancellationToken = default) =>
        Settle(async () =>
        {
            await receiver.RenewMessageLockAsync(message, cancellationToken); // updates message.LockedUntil
            LockedUntil = message.LockedUntil;
        });

    private async Task Settle(Func<Task> action)
    {
        try
        {
            await action();
        }
        catch (ServiceBusException e) when (e.Reason == ServiceBusFailureReason.MessageLockLost)
        {
            throw new TaskLockLostException(MessageId, e);
        }
    }

    internal static IReadOnlyDictionary<string, string> StringProperties(ServiceBusReceivedMessage message) =>
        message.ApplicationProperties.ToDictionary(p => p.Key, p => Convert.ToString(p.Value, System.Globalization.CultureInfo.InvariantCulture) ?? "");
}
