using BatchRender.Core.Configuration;

namespace BatchRender.Core.Transport;

// The one queue abstraction both sides use: ingest sends render tasks, workers receive them with a lock they renew
// while rendering and then complete, abandon (redeliver) or dead-letter. Two real implementations: Azure Service Bus
// (production) and Azure Storage Queues (local and cheap mode); one contract test suite runs against both.

/// <summary>Names of the application properties every task carries.</summary>
public static class TaskProperties
{
    public const string JobId = "jobId";
    public const string ItemId = "itemId";
}

/// <summary>A task to send: <paramref name="MessageId"/> is the idempotency key (Service Bus duplicate detection).</summary>
public sealed record OutgoingTask(string MessageId, BinaryData Body, IReadOnlyDictionary<string, string> Properties);

public interface IRenderTaskSender : IAsyncDisposable
{
    /// <summary>Sends the tasks in as few broker calls as the transport allows; returns when all are accepted.</summary>
    Task SendAsync(IReadOnlyList<OutgoingTask> tasks, CancellationToken cancellationToken = default);
}

public interface IRenderTaskReceiver : IAsyncDisposable
{
    /// <summary>
    /// Receives up to <paramref name="maxTasks"/> locked tasks, waiting up to <paramref name="maxWait"/> for the first;
    /// returns an empty list when none arrived in time.
    /// </summary>
    Task<IReadOnlyList<IReceivedTask>> ReceiveAsync(int maxTasks, TimeSpan maxWait, CancellationToken cancellationToken = default);

    /// <summary>Reads (without removing) up to <paramref name="maxTasks"/> dead-lettered tasks, oldest first.</summary>
    Task<IReadOnlyList<DeadLetteredTask>> PeekDeadLettersAsync(int maxTasks, CancellationToken cancellationToken = default);
}

/// <summary>A received task, locked for this receiver until <see cref="LockedUntil"/> (renew it while working).</summary>
public interface IReceivedTask
{
    string MessageId { get; }
    BinaryData Body { get; }
    /// <summary>1 on the first delivery.</summary>
    int DeliveryCount { get; }
    IReadOnlyDictionary<string, string> Properties { get; }
    DateTimeOffset LockedUntil { get; }

    /// <summary>Done: removes the task.</summary>
    Task CompleteAsync(CancellationToken cancellationToken = default);
    /// <summary>Releases the lock so the task is delivered again (a transient failure).</summary>
    Task AbandonAsync(CancellationToken cancellationToken = default);
    /// <summary>Moves the task to the dead-letter queue: it can never succeed.</summary>
    Task DeadLetterAsync(string reason, string description, CancellationToken cancellationToken = default);
    /// <summary>Extends the lock by the configured lock duration.</summary>
    Task RenewLockAsync(CancellationToken cancellationToken = default);
}

public sealed record DeadLetteredTask(
    string MessageId, BinaryData Body, IReadOnlyDictionary<string, string> Properties, string? Reason, string? Description,
    int DeliveryCount);

/// <summary>Standard dead-letter reasons.</summary>
/// <summary>
/// The delivery limit both transports keep themselves: a task delivered more than Transport:MaxDeliveryCount times is
/// dead-lettered at receive, before a worker sees it, and reported so its item's state can say so (a worker that died
/// on the last allowed delivery never recorded anything). Service Bus would dead-letter it on its own, silently, so its
/// queue's MaxDeliveryCount is one higher (bicep/modules/servicebus.bicep): the broker's limit is only a backstop.
/// </summary>
public static class DeliveryLimit
{
    public static bool IsExceeded(IReceivedTask task, TransportOptions options) => task.DeliveryCount > options.MaxDeliveryCount;

    public static async Task DeadLetterAsync(IReceivedTask task, TransportOptions options,
        Func<DeadLetteredTask, CancellationToken, Task>? onDeliveriesExceeded, CancellationToken cancellationToken)
    {
        var description = $"delivered {task.DeliveryCount - 1} times without completing (the maximum is {options.MaxDeliveryCount})";
        await task.DeadLetterAsync(DeadLetterReasons.MaxDeliveryCountExceeded, description, cancellationToken);
        if (onDeliveriesExceeded is not null)
            await onDeliveriesExceeded(new DeadLetteredTask(task.MessageId, task.Body, task.Properties,
                DeadLetterReasons.MaxDeliveryCountExceeded, description, task.DeliveryCount), cancellationToken);
    }
}

public static class DeadLetterReasons
{
    /// <summary>Delivered more than the configured maximum without completing (Service Bus' own name for it).</summary>
    public const string MaxDeliveryCountExceeded = "MaxDeliveryCountExceeded";
    public const string Unparseable = "Unparseable";
    public const string UnknownModel = "UnknownModel";
    public const string InvalidParameters = "InvalidParameters";
}
