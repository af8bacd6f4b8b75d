using System.Text.Json;
using System.Text.Json.Serialization;
using Azure;
using Azure.Storage.Queues;
using Azure.Storage.Queues.Models;
using BatchRender.Core.Configuration;

namespace BatchRender.Core.Transport;

// Azure Storage Queues as the task transport (local and cheap mode). Queues have no message properties, no
// duplicate detection and no dead-letter queue, so:
// - each message is a base64 JSON envelope carrying MessageId, the properties and the body;
// - the visibility timeout is the lock (renewed with UpdateMessage), the dequeue count the delivery count;
// - a poison queue is the dead-letter queue, the reason and description written into the envelope;
// - idempotency by MessageId is enforced where it matters, at the item state and the create-only outputs.

/// <summary>The queue message text (before base64): a versioned envelope.</summary>
internal sealed record StorageQueueEnvelope(
    [property: JsonPropertyName("v")] int Version,
    [property: JsonPropertyName("messageId")] string MessageId,
    [property: JsonPropertyName("properties")] Dictionary<string, string> Properties,
    [property: JsonPropertyName("body")] byte[] Body,
    [property: JsonPropertyName("deadLetter")] StorageQueueDeadLetter? DeadLetter = null)
{
    public string Encode() => Convert.ToBase64String(JsonSerializer.SerializeToUtf8Bytes(this));

    public static StorageQueueEnvelope? TryDecode(string text)
    {
        try
        {
            var envelope = JsonSerializer.Deserialize<StorageQueueEnvelope>(Convert.FromBase64String(text));
            return envelope is { Version: 1, MessageId: not null, Properties: not null, Body: not null } ? envelope : null;
        }
        catch (Exception e) when (e is FormatException or JsonException)
        {
            return null;
        }
    }
}

internal sealed record StorageQueueDeadLetter(
    [property: JsonPropertyName("reason")] string Reason,
    [property: JsonPropertyName("description")] string Description,
    [property: JsonPropertyName("deliveryCount")] int DeliveryCount,
    [property: JsonPropertyName("deadLetteredAt")] DateTimeOffset DeadLetteredAt);

/// <summary>Creates the task queue and its poison queue once per process.</summary>
internal sealed class StorageQueuePair(QueueServiceClient service, TransportOptions options)
{
    private readonly Lazy<Task> _created = new(async () =>
    {
        await service.GetQueueClient(options.QueueName).CreateIfNotExistsAsync();
        await service.GetQueueClient(options.PoisonQueueName).CreateIfNotExistsAsync();
    });

    public QueueClient Tasks { get; } = service.GetQueueClient(options.QueueName);
    public QueueClient Poison { get; } = service.GetQueueClient(options.PoisonQueueName);

    public Task EnsureCreatedAsync(CancellationToken cancellationToken) => _created.Value.WaitAsync(cancellationToken);
}

public sealed class StorageQueueTaskSender : IRenderTaskSender
{
    // A queue takes one message per request: throughput comes from requests in flight.
    private const int SendConcurrency = 32;
    private readonly StorageQueuePair _queues;

    public StorageQueueTaskSender(QueueServiceClient service, TransportOptions options) => _queues = new StorageQueuePair(service, options);

    public async Task SendAsync(IReadOnlyList<OutgoingTask> tasks, CancellationToken cancellationToken = default)
    {
        await _queues.EnsureCreatedAsync(cancellationToken);
        await Parallel.ForEachAsync(tasks,
            new ParallelOptions { MaxDegreeOfParallelism = SendConcurrency, CancellationToken = cancellationToken },
            async (task, ct) =>
            {
                var envelope = new StorageQueueEnvelope(1, task.MessageId, new Dictionary<string, string>(task.Properties), task.Body.ToArray());
                // timeToLive -1: a queued render never expires, however long the job takes.
                await _queues.Tasks.SendMessageAsync(envelope.Encode(), visibilityTimeout: null,
                    timeToLive: TimeSpan.FromSeconds(-1), ct);
            });
    }

    public ValueTask DisposeAsync() => ValueTask.CompletedTask;
}

public sealed class StorageQueueTaskReceiver : IRenderTaskReceiver
{
    private const int MaxPerRequest = 32; // the service's limit per receive call
    private readonly StorageQueuePair _queues;
    private readonly TransportOptions _options;
    private readonly TimeProvider _time;
    private readonly Func<DeadLetteredTask, CancellationToken, Task>? _onDeliveriesExceeded;

    /// <param name="onDeliveriesExceeded">
    /// Called after this receiver dead-letters a task delivered too often (what the Service Bus broker does on its own),
    /// so the item's state can say so: the worker never saw that delivery.
    /// </param>
    public StorageQueueTaskReceiver(QueueServiceClient service, TransportOptions options, TimeProvider? time = null,
        Func<DeadLetteredTask, CancellationToken, Task>? onDeliveriesExceeded = null)
    {
        _queues = new StorageQueuePair(service, options);
        _options = options;
        _time = time ?? TimeProvider.System;
        _onDeliveriesExceeded = onDeliveriesExceeded;
    }

    public async Task<IReadOnlyList<IReceivedTask>> ReceiveAsync(int maxTasks, TimeSpan maxWait, CancellationToken cancellationToken = default)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(maxTasks, 1);
        await _queues.EnsureCreatedAsync(cancellationToken);
        var received = new List<IReceivedTask>();
        var started = _time.GetTimestamp();
        var pause = TimeSpan.FromMilliseconds(100);
        while (true)
        {
            var wanted = Math.Min(MaxPerRequest, maxTasks - received.Count);
            QueueMessage[] messages = await _queues.Tasks.ReceiveMessagesAsync(wanted, _options.LockDuration, cancellationToken);
            foreach (var message in messages)
            {
                var task = new StorageQueueReceivedTask(_queues, _options, message, _time);
                if (task.DeliveryCount > _options.MaxDeliveryCount)
                {
                    // What Service Bus does on its own: a task delivered too often goes to the dead-letter queue.
                    var description = $"delivered {task.DeliveryCount - 1} times without completing (the maximum is {_options.MaxDeliveryCount})";
                    await task.DeadLetterAsync(DeadLetterReasons.MaxDeliveryCountExceeded, description, cancellationToken);
                    if (_onDeliveriesExceeded is not null)
                        await _onDeliveriesExceeded(new DeadLetteredTask(task.MessageId, task.Body, task.Properties,
                            DeadLetterReasons.MaxDeliveryCountExceeded, description, task.DeliveryCount), cancellationToken);
                }
                else
                    received.Add(task);
            }
            if (received.Count >= maxTasks || (received.Count > 0 && messages.Length < wanted))
                return received;
            if (messages.Length == wanted) continue; // a full page: there may be more right now
            var left = maxWait - _time.GetElapsedTime(started);
            if (left <= TimeSpan.Zero) return received;
            await Task.Delay(left < pause ? left : pause, _time, cancellationToken);
            pause = TimeSpan.FromMilliseconds(Math.Min(pause.TotalMilliseconds * 2, 1000));
        }
    }

    public async Task<IReadOnlyList<DeadLetteredTask>> PeekDeadLettersAsync(int maxTasks, CancellationToken cancellationToken = default)
    {
        await _queues.EnsureCreatedAsync(cancellationToken);
        PeekedMessage[] messages = await _queues.Poison.PeekMessagesAsync(Math.Min(maxTasks, MaxPerRequest), cancellationToken);
        return messages.Select(m =>
        {
            var envelope = StorageQueueEnvelope.TryDecode(m.MessageText);
            return envelope is null
                ? new DeadLetteredTask(m.MessageId, m.Body, new Dictionary<string, string>(), DeadLetterReasons.Unparseable,
                    "the poison message is not a task envelope", (int)m.DequeueCount)
                : new DeadLetteredTask(envelope.MessageId, BinaryData.FromBytes(envelope.Body), envelope.Properties,
                    envelope.DeadLetter?.Reason, envelope.DeadLetter?.Description, envelope.DeadLetter?.DeliveryCount ?? 0);
        }).ToList();
    }

    public ValueTask DisposeAsync() => ValueTask.CompletedTask;
}

internal sealed class StorageQueueReceivedTask : IReceivedTask
{
    private readonly StorageQueuePair _queues;
    private readonly TransportOptions _options;
    private readonly TimeProvider _time;
    private readonly string _queueMessageId;
    private readonly SemaphoreSlim _receiptLock = new(1, 1);
    private readonly string _rawText;
    private string _popReceipt;

    public StorageQueueReceivedTask(StorageQueuePair queues, TransportOptions options, QueueMessage message, TimeProvider time)
    {
        _queues = queues;
        _options = options;
        _time = time;
        _queueMessageId = message.MessageId;
        _popReceipt = message.PopReceipt;
        _rawText = message.MessageText;
        DeliveryCount = (int)message.DequeueCount;
        LockedUntil = message.NextVisibleOn ?? time.GetUtcNow() + options.LockDuration;
        var envelope = StorageQueueEnvelope.TryDecode(message.MessageText);
        if (envelope is null)
        {
            // Not ours (written by hand or by another tool): hand over the raw bytes so the worker dead-letters it.
            MessageId = message.MessageId;
            Body = message.Body;
            Properties = new Dictionary<string, string>();
        }
        else
        {
            MessageId = envelope.MessageId;
            Body = BinaryData.FromBytes(envelope.Body);
            Properties = envelope.Properties;
        }
    }

    public string MessageId { get; }
    public BinaryData Body { get; }
    public int DeliveryCount { get; }
    public IReadOnlyDictionary<string, string> Properties { get; }
    public DateTimeOffset LockedUntil { get; private set; }

    public Task CompleteAsync(CancellationToken cancellationToken = default) =>
        WithReceipt(receipt => _queues.Tasks.DeleteMessageAsync(_queueMessageId, receipt, cancellationToken));

    public Task AbandonAsync(CancellationToken cancellationToken = default) =>
        WithReceipt(async receipt =>
        {
            var update = await _queues.Tasks.UpdateMessageAsync(_queueMessageId, receipt, visibilityTimeout: TimeSpan.Zero,
                cancellationToken: cancellationToken);
            _popReceipt = update.Value.PopReceipt;
        });

    public Task RenewLockAsync(CancellationToken cancellationToken = default) =>
        WithReceipt(async receipt =>
        {
            var update = await _queues.Tasks.UpdateMessageAsync(_queueMessageId, receipt, visibilityTimeout: _options.LockDuration,
                cancellationToken: cancellationToken);
            _popReceipt = update.Value.PopReceipt;
            LockedUntil = update.Value.NextVisibleOn;
        });

    public Task DeadLetterAsync(string reason, string description, CancellationToken cancellationToken = default) =>
        WithReceipt(async receipt =>
        {
            var deadLetter = new StorageQueueDeadLetter(reason, description, DeliveryCount, _time.GetUtcNow());
            var envelope = StorageQueueEnvelope.TryDecode(_rawText) is { } original
                ? original with { DeadLetter = deadLetter }
                : new StorageQueueEnvelope(1, MessageId, new Dictionary<string, string>(), Body.ToArray(), deadLetter);
            // Copy first, then delete: a crash in between leaves a duplicate in the poison queue, never a lost task.
            await _queues.Poison.SendMessageAsync(envelope.Encode(), visibilityTimeout: null, timeToLive: TimeSpan.FromSeconds(-1),
                cancellationToken);
            await _queues.Tasks.DeleteMessageAsync(_queueMessageId, receipt, cancellationToken);
        });

    // Every update hands out a new pop receipt; serialise so renewals and settlement never race on a stale one.
    private async Task WithReceipt(Func<string, Task> action)
    {
        await _receiptLock.WaitAsync();
        try
        {
            await action(_popReceipt);
        }
        catch (RequestFailedException e) when (e.Status == 404 || e.ErrorCode == "PopReceiptMismatch")
        {
            throw new TaskLockLostException(MessageId, e);
        }
        finally
        {
            _receiptLock.Release();
        }
    }
}

/// <summary>The lock on a received task expired (another receiver may have it now), so it can no longer be settled.</summary>
public sealed class TaskLockLostException(string messageId, Exception inner)
    : Exception($"The lock on task {messageId} was lost (it expired and the task may have been delivered again).", inner)
{
    public string MessageId { get; } = messageId;
}
