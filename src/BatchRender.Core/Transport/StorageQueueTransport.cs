using System.Text.Json;
using System.Text.Json.Serialization;
using Azure;
using Azure.Storage.Queues;
using Azure.Storage.Queues.Models;
using BatchRender.Core.Configuration;

namespace BatchRender.Core.Transport;

// Azure Storage Queues as the task transport (local and cheap mode). Queues have no message properties, no
// duplicate detection, no dead-letter queue and no batch send, so:
// - each queue message is a base64 JSON envelope carrying up to TasksPerQueueMessage tasks (each with its MessageId,
//   properties and body): a queue takes one message per request, and one task per request caps ingest at the
//   emulator's request rate (~900/s on 2 cores), below what a 100k-item manifest needs;
// - the visibility timeout is the lock of all the tasks in a message (renewed with UpdateMessage), the dequeue count
//   their delivery count; settling a task rewrites the message without it, so a crash never redelivers finished work
//   (and when it does, the item state and the create-only outputs make the redelivery harmless);
// - a poison queue is the dead-letter queue, one task per message, the reason and description written into it.

/// <summary>One task as it travels in a queue message (v1: a message of its own; the poison queue's format).</summary>
internal sealed record StorageQueueEnvelope(
    [property: JsonPropertyName("v")] int Version,
    [property: JsonPropertyName("messageId")] string MessageId,
    [property: JsonPropertyName("properties")] Dictionary<string, string> Properties,
    [property: JsonPropertyName("body")] byte[] Body,
    [property: JsonPropertyName("deadLetter")] StorageQueueDeadLetter? DeadLetter = null)
{
    public const int Single = 1, Packed = 2;
    /// <summary>The service's limit on a message's text (base64 included).</summary>
    public const int MaxMessageChars = 64 * 1024;

    public string Encode() => Convert.ToBase64String(JsonSerializer.SerializeToUtf8Bytes(this));

    /// <summary>A v2 message: <c>{"v":2,"tasks":[v1 envelopes]}</c>, base64. The entries are already serialised JSON.</summary>
    public static string EncodePacked(IReadOnlyList<byte[]> entries)
    {
        if (entries.Count == 1) return Convert.ToBase64String(entries[0]);
        return Convert.ToBase64String(PackedJson(entries));
    }

    /// <summary>The base64 length of <see cref="EncodePacked"/> for entries whose JSON sizes add up to <paramref name="entryBytes"/>.</summary>
    public static int PackedLength(int count, long entryBytes)
    {
        long json = count == 1 ? entryBytes : PackedPrefix.Length + PackedSuffix.Length + entryBytes + (count - 1);
        return (int)Math.Min(int.MaxValue, (json + 2) / 3 * 4);
    }

    public byte[] ToJson() => JsonSerializer.SerializeToUtf8Bytes(this with { DeadLetter = null });

    /// <summary>The tasks of a queue message, or null when it is not ours (then it is delivered raw).</summary>
    public static IReadOnlyList<StorageQueueEnvelope>? TryDecodeMessage(string text)
    {
        try
        {
            var bytes = Convert.FromBase64String(text);
            using var document = JsonDocument.Parse(bytes);
            if (!document.RootElement.TryGetProperty("v", out var version) || version.ValueKind != JsonValueKind.Number) return null;
            if (version.GetInt32() == Packed)
            {
                var packed = document.RootElement.Deserialize<PackedEnvelope>();
                if (packed?.Tasks is not { Count: > 0 } tasks || tasks.Any(t => !IsValid(t))) return null;
                return tasks;
            }
            var single = document.RootElement.Deserialize<StorageQueueEnvelope>();
            return IsValid(single) ? [single!] : null;
        }
        catch (Exception e) when (e is FormatException or JsonException or InvalidOperationException)
        {
            return null;
        }
    }

    /// <summary>A single-task (v1) message, or null (the poison queue holds only these).</summary>
    public static StorageQueueEnvelope? TryDecode(string text) =>
        TryDecodeMessage(text) is [var only] ? only : null;

    private static bool IsValid(StorageQueueEnvelope? e) => e is { Version: Single, MessageId: not null, Properties: not null, Body: not null };

    private static readonly byte[] PackedPrefix = """{"v":2,"tasks":["""u8.ToArray();
    private static readonly byte[] PackedSuffix = "]}"u8.ToArray();

    private static byte[] PackedJson(IReadOnlyList<byte[]> entries)
    {
        using var buffer = new MemoryStream();
        buffer.Write(PackedPrefix);
        for (int i = 0; i < entries.Count; i++)
        {
            if (i > 0) buffer.WriteByte((byte)',');
            buffer.Write(entries[i]);
        }
        buffer.Write(PackedSuffix);
        return buffer.ToArray();
    }

    private sealed record PackedEnvelope([property: JsonPropertyName("tasks")] List<StorageQueueEnvelope>? Tasks);
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
    // A queue takes one message per request: throughput comes from requests in flight and tasks per message.
    private const int SendConcurrency = 32;
    private readonly StorageQueuePair _queues;
    private readonly int _tasksPerMessage;

    public StorageQueueTaskSender(QueueServiceClient service, TransportOptions options)
    {
        _queues = new StorageQueuePair(service, options);
        _tasksPerMessage = options.TasksPerQueueMessage;
    }

    public async Task SendAsync(IReadOnlyList<OutgoingTask> tasks, CancellationToken cancellationToken = default)
    {
        await _queues.EnsureCreatedAsync(cancellationToken);
        await Parallel.ForEachAsync(Pack(tasks, _tasksPerMessage),
            new ParallelOptions { MaxDegreeOfParallelism = SendConcurrency, CancellationToken = cancellationToken },
            async (text, ct) =>
                // timeToLive -1: a queued render never expires, however long the job takes.
                await _queues.Tasks.SendMessageAsync(text, visibilityTimeout: null, timeToLive: TimeSpan.FromSeconds(-1), ct));
    }

    /// <summary>The queue messages for <paramref name="tasks"/>, in order: up to <paramref name="tasksPerMessage"/>
    /// consecutive tasks each, fewer where the next would push the message past the service's size limit.</summary>
    internal static List<string> Pack(IReadOnlyList<OutgoingTask> tasks, int tasksPerMessage)
    {
        var messages = new List<string>();
        var entries = new List<byte[]>(tasksPerMessage);
        long bytes = 0;
        foreach (var task in tasks)
        {
            var entry = new StorageQueueEnvelope(StorageQueueEnvelope.Single, task.MessageId, new Dictionary<string, string>(task.Properties),
                task.Body.ToArray()).ToJson();
            if (StorageQueueEnvelope.PackedLength(1, entry.Length) > StorageQueueEnvelope.MaxMessageChars)
                throw new InvalidOperationException(
                    $"Task {task.MessageId} is larger than a Storage Queue message may be ({StorageQueueEnvelope.MaxMessageChars} characters as base64).");
            if (entries.Count > 0 && (entries.Count == tasksPerMessage
                                      || StorageQueueEnvelope.PackedLength(entries.Count + 1, bytes + entry.Length) > StorageQueueEnvelope.MaxMessageChars))
            {
                messages.Add(StorageQueueEnvelope.EncodePacked(entries));
                entries = new List<byte[]>(tasksPerMessage);
                bytes = 0;
            }
            entries.Add(entry);
            bytes += entry.Length;
        }
        if (entries.Count > 0) messages.Add(StorageQueueEnvelope.EncodePacked(entries));
        return messages;
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
    /// Called after this receiver dead-letters a task delivered too often (<see cref="DeliveryLimit"/>), so the item's
    /// state can say so: the worker never saw that delivery.
    /// </param>
    public StorageQueueTaskReceiver(QueueServiceClient service, TransportOptions options, TimeProvider? time = null,
        Func<DeadLetteredTask, CancellationToken, Task>? onDeliveriesExceeded = null)
    {
        _queues = new StorageQueuePair(service, options);
        _options = options;
        _time = time ?? TimeProvider.System;
        _onDeliveriesExceeded = onDeliveriesExceeded;
    }

    /// <summary>
    /// Receives up to <paramref name="maxTasks"/> tasks. A queue message is never split: messages are fetched only
    /// while their tasks surely fit (a message holds at most TasksPerQueueMessage), except that a first message always
    /// comes back whole, so a receiver asking for fewer tasks than a message packs gets that message's tasks.
    /// </summary>
    public async Task<IReadOnlyList<IReceivedTask>> ReceiveAsync(int maxTasks, TimeSpan maxWait, CancellationToken cancellationToken = default)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(maxTasks, 1);
        await _queues.EnsureCreatedAsync(cancellationToken);
        var received = new List<IReceivedTask>();
        var started = _time.GetTimestamp();
        var pause = TimeSpan.FromMilliseconds(100);
        int perMessage = _options.TasksPerQueueMessage;
        while (true)
        {
            var wanted = Math.Clamp((maxTasks - received.Count) / perMessage, 1, MaxPerRequest);
            QueueMessage[] messages = await _queues.Tasks.ReceiveMessagesAsync(wanted, _options.LockDuration, cancellationToken);
            foreach (var message in messages)
            {
                var lease = new StorageQueueMessageLease(_queues, _options, message, _time);
                if (lease.DeliveryCount > _options.MaxDeliveryCount)
                {
                    foreach (var task in lease.Tasks)
                        await DeliveryLimit.DeadLetterAsync(task, _options, _onDeliveriesExceeded, cancellationToken);
                }
                else
                    received.AddRange(lease.Tasks);
            }
            bool full = maxTasks - received.Count < perMessage;
            if (received.Count > 0 && (full || messages.Length < wanted))
                return received;
            if (messages.Length == wanted && !full) continue; // a full page: there may be more right now
            var left = maxWait - _time.GetElapsedTime(started);
            if (left <= TimeSpan.Zero) return received;
            await Task.Delay(left < pause ? left : pause, _time, cancellationToken);
            pause = TimeSpan.FromMilliseconds(Math.Min(pause.TotalMilliseconds * 2, 1000));
        }
    }

    /// <summary>How many tasks a task-queue message carries (1 for one that is not a task envelope): a queue's length
    /// in messages is not its length in tasks.</summary>
    public static int TaskCount(string messageText) => StorageQueueEnvelope.TryDecodeMessage(messageText)?.Count ?? 1;

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

/// <summary>
/// One received queue message and the tasks in it, which share its visibility timeout (the lock) and pop receipt.
/// Settling a task while others are still being worked on rewrites the message without it (and renews the lock);
/// when the last is settled the message is deleted, or, if any were abandoned, rewritten to hold just those and made
/// visible again.
/// </summary>
internal sealed class StorageQueueMessageLease
{
    private enum Outcome { Pending, Completed, DeadLettered, Abandoned }

    private readonly StorageQueuePair _queues;
    private readonly TransportOptions _options;
    private readonly TimeProvider _time;
    private readonly string _queueMessageId;
    private readonly SemaphoreSlim _receiptLock = new(1, 1);
    private readonly List<PendingSettlement> _pending = [];   // settlements waiting for the receipt (guarded by itself)
    private readonly StorageQueueEnvelope[]? _entries;   // null: not our envelope (a single raw task)
    private readonly Outcome[] _outcomes;
    private string _popReceipt;
    private long _lastRenewal;

    public StorageQueueMessageLease(StorageQueuePair queues, TransportOptions options, QueueMessage message, TimeProvider time)
    {
        _queues = queues;
        _options = options;
        _time = time;
        _queueMessageId = message.MessageId;
        _popReceipt = message.PopReceipt;
        _lastRenewal = time.GetTimestamp();
        DeliveryCount = (int)message.DequeueCount;
        LockedUntil = message.NextVisibleOn ?? time.GetUtcNow() + options.LockDuration;
        var entries = StorageQueueEnvelope.TryDecodeMessage(message.MessageText);
        _entries = entries?.ToArray();
        Tasks = entries is null
            // Not ours (written by hand or by another tool): hand over the raw bytes so the worker dead-letters it.
            ? [new StorageQueueReceivedTask(this, 0, message.MessageId, message.Body, new Dictionary<string, string>())]
            : entries.Select((e, i) => (IReceivedTask)new StorageQueueReceivedTask(this, i, e.MessageId, BinaryData.FromBytes(e.Body), e.Properties)).ToList();
        _outcomes = new Outcome[Tasks.Count];
    }

    public IReadOnlyList<IReceivedTask> Tasks { get; }
    public int DeliveryCount { get; }
    public DateTimeOffset LockedUntil { get; private set; }

    public Task CompleteAsync(int index, CancellationToken ct) => SettleAsync(index, Outcome.Completed, null, ct);

    public Task AbandonAsync(int index, CancellationToken ct) => SettleAsync(index, Outcome.Abandoned, null, ct);

    public Task DeadLetterAsync(int index, string reason, string description, CancellationToken ct)
    {
        var deadLetter = new StorageQueueDeadLetter(reason, description, DeliveryCount, _time.GetUtcNow());
        var task = Tasks[index];
        var envelope = _entries is null
            ? new StorageQueueEnvelope(StorageQueueEnvelope.Single, task.MessageId, new Dictionary<string, string>(), task.Body.ToArray(), deadLetter)
            : _entries[index] with { DeadLetter = deadLetter };
        // Copied first, then removed from the task message: a crash in between leaves a duplicate in the poison
        // queue, never a lost task.
        return SettleAsync(index, Outcome.DeadLettered,
            ct2 => _queues.Poison.SendMessageAsync(envelope.Encode(), visibilityTimeout: null, timeToLive: TimeSpan.FromSeconds(-1), ct2), ct);
    }

    public async Task RenewAsync(CancellationToken ct)
    {
        await WithReceipt(async () =>
        {
            // The tasks of one message renew together; one update serves them all.
            if (_outcomes.All(o => o != Outcome.Pending)) return;
            if (_time.GetElapsedTime(_lastRenewal) < _options.LockDuration / 10) return;
            var update = await _queues.Tasks.UpdateMessageAsync(_queueMessageId, _popReceipt, visibilityTimeout: _options.LockDuration, cancellationToken: ct);
            Renewed(update.Value);
        });
    }

    /// <summary>
    /// Settles one task. Settlements that arrive while another holds the pop receipt (a worker finishing a batch settles
    /// its tasks at about the same time) are applied together by whoever takes the receipt next: one update or delete
    /// of the message for all of them instead of one each.
    /// </summary>
    private async Task SettleAsync(int index, Outcome outcome, Func<CancellationToken, Task>? before, CancellationToken ct)
    {
        var mine = new PendingSettlement(index, outcome, before);
        lock (_pending) _pending.Add(mine);
        await _receiptLock.WaitAsync(CancellationToken.None);
        try
        {
            List<PendingSettlement> settlements;
            lock (_pending)
            {
                settlements = [.. _pending];
                _pending.Clear();
            }
            if (settlements.Count > 0) await ApplyAsync(settlements, ct);
        }
        finally
        {
            _receiptLock.Release();
        }
        await mine.Done.Task;
    }

    private async Task ApplyAsync(IReadOnlyList<PendingSettlement> settlements, CancellationToken ct)
    {
        var outcomes = (Outcome[])_outcomes.Clone();
        var accepted = new List<PendingSettlement>(settlements.Count);
        try
        {
            foreach (var settlement in settlements)
            {
                if (outcomes[settlement.Index] != Outcome.Pending)
                {
                    settlement.Done.TrySetException(new InvalidOperationException(
                        $"Task {Tasks[settlement.Index].MessageId} was already settled ({outcomes[settlement.Index]})."));
                    continue;
                }
                if (settlement.Before is not null) await settlement.Before(ct);
                outcomes[settlement.Index] = settlement.Outcome;
                accepted.Add(settlement);
            }
            if (accepted.Count == 0) return;
            var keep = Enumerable.Range(0, outcomes.Length).Where(i => outcomes[i] is Outcome.Pending or Outcome.Abandoned).ToList();
            bool last = outcomes.All(o => o != Outcome.Pending);
            if (last && keep.Count == 0)
                await _queues.Tasks.DeleteMessageAsync(_queueMessageId, _popReceipt, ct);
            else if (last)
                // Every task is settled and some were abandoned: just those go back on the queue, visible now.
                Renewed((await _queues.Tasks.UpdateMessageAsync(_queueMessageId, _popReceipt, Content(keep), TimeSpan.Zero, ct)).Value);
            else if (accepted.Any(s => s.Outcome != Outcome.Abandoned))
                // Others are still in the works: the message no longer holds these tasks (progress survives a crash).
                Renewed((await _queues.Tasks.UpdateMessageAsync(_queueMessageId, _popReceipt, Content(keep), _options.LockDuration, ct)).Value);
            outcomes.CopyTo(_outcomes, 0);
            foreach (var settlement in accepted) settlement.Done.TrySetResult();
        }
        catch (Exception e)
        {
            var error = IsLockLost(e) ? LockLost((RequestFailedException)e) : e;
            foreach (var settlement in settlements) settlement.Done.TrySetException(error);
        }
    }

    private sealed record PendingSettlement(int Index, Outcome Outcome, Func<CancellationToken, Task>? Before)
    {
        public TaskCompletionSource Done { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);
    }

    /// <summary>The message text holding the tasks at <paramref name="indices"/>; null (unchanged) for a raw message.</summary>
    private string? Content(IReadOnlyList<int> indices) =>
        _entries is null || indices.Count == _entries.Length ? null : StorageQueueEnvelope.EncodePacked(indices.Select(i => _entries[i].ToJson()).ToList());

    private void Renewed(UpdateReceipt receipt)
    {
        _popReceipt = receipt.PopReceipt;
        LockedUntil = receipt.NextVisibleOn;
        _lastRenewal = _time.GetTimestamp();
    }

    // Every update hands out a new pop receipt; serialise so renewals and settlements never race on a stale one.
    private async Task WithReceipt(Func<Task> action)
    {
        await _receiptLock.WaitAsync();
        try
        {
            await action();
        }
        catch (RequestFailedException e) when (IsLockLost(e))
        {
            throw LockLost(e);
        }
        finally
        {
            _receiptLock.Release();
        }
    }

    private static bool IsLockLost(Exception e) => e is RequestFailedException { Status: 404 } or RequestFailedException { ErrorCode: "PopReceiptMismatch" };

    private TaskLockLostException LockLost(RequestFailedException e) =>
        new(Tasks.Count == 1 ? Tasks[0].MessageId : string.Join(", ", Tasks.Select(t => t.MessageId)), e);
}

/// <summary>A task of a received queue message; its lock is the message's.</summary>
internal sealed class StorageQueueReceivedTask(StorageQueueMessageLease lease, int index, string messageId, BinaryData body,
    IReadOnlyDictionary<string, string> properties) : IReceivedTask
{
    public string MessageId { get; } = messageId;
    public BinaryData Body { get; } = body;
    public int DeliveryCount => lease.DeliveryCount;
    public IReadOnlyDictionary<string, string> Properties { get; } = properties;
    public DateTimeOffset LockedUntil => lease.LockedUntil;

    public Task CompleteAsync(CancellationToken cancellationToken = default) => lease.CompleteAsync(index, cancellationToken);
    public Task AbandonAsync(CancellationToken cancellationToken = default) => lease.AbandonAsync(index, cancellationToken);
    public Task DeadLetterAsync(string reason, string description, CancellationToken cancellationToken = default) =>
        lease.DeadLetterAsync(index, reason, description, cancellationToken);
    public Task RenewLockAsync(CancellationToken cancellationToken = default) => lease.RenewAsync(cancellationToken);
}

/// <summary>The lock on a received task expired (another receiver may have it now), so it can no longer be settled.</summary>
public sealed class TaskLockLostException(string messageId, Exception inner)
    : Exception($"The lock on task {messageId} was lost (it expired and the task may have been delivered again).", inner)
{
    public string MessageId { get; } = messageId;
}
