using System.Security.Cryptography;
using System.Text.Json;
using Azure.Core;
using Azure.Core.Pipeline;
using Azure.Storage.Blobs;
using Azure.Storage.Blobs.Models;
using BatchRender.Core.Configuration;
using BatchRender.Core.Messages;
using BatchRender.Core.Reports;
using BatchRender.Core.State;
using BatchRender.Core.Storage;
using BatchRender.Core.Tests.Infrastructure;
using BatchRender.Core.Transport;
using BatchRender.Worker.Health;
using BatchRender.Worker.Processing;
using BatchRender.Worker.Rendering;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;

namespace BatchRender.Worker.Tests.Infrastructure;

/// <summary>
/// One isolated deployment on the shared Azurite (its own queue, poison queue, tables and containers) and workers over
/// it, wired as the host wires them, with the deterministic test renderer and, when asked, a fault-injecting policy
/// on the output writer's blob client.
/// </summary>
public sealed class WorkerHarness
{
    public static readonly BlobWriteResilienceOptions FastRetries = new()
    {
        MaxRetryAttempts = 12, BaseDelay = TimeSpan.FromMilliseconds(10), MaxDelay = TimeSpan.FromMilliseconds(200),
        AttemptTimeout = TimeSpan.FromSeconds(1),
    };

    private readonly AzuriteFixture _azurite;

    public WorkerHarness(AzuriteFixture azurite, string name, int maxDeliveryCount = 5, TimeSpan? lockDuration = null)
    {
        _azurite = azurite;
        var unique = AzuriteFixture.UniqueName(name)[..Math.Min(40, name.Length + 32)];
        Transport = new TransportOptions
        {
            QueueName = unique, PoisonQueueName = unique + "-poison", MaxDeliveryCount = maxDeliveryCount,
            LockDuration = lockDuration ?? TimeSpan.FromSeconds(4),
        };
        Blobs = new BlobOptions { RendersContainer = unique + "-renders", ManifestsContainer = unique + "-manifests", SchedulesContainer = unique + "-schedules" };
        var tables = unique.Replace("-", "");
        StateOptions = new StateOptions { JobsTable = tables + "jobs", ItemsTable = tables + "items", SchedulesTable = tables + "sched" };
        State = new JobStateStore(azurite.TableService(), Options.Create(StateOptions));
        Sender = new StorageQueueTaskSender(azurite.QueueService(), Transport);
        Receiver = new StorageQueueTaskReceiver(azurite.QueueService(), Transport);
        Renders = azurite.BlobService().GetBlobContainerClient(Blobs.RendersContainer);
    }

    public TransportOptions Transport { get; }
    public BlobOptions Blobs { get; }
    public StateOptions StateOptions { get; }
    public JobStateStore State { get; }
    public StorageQueueTaskSender Sender { get; }
    public StorageQueueTaskReceiver Receiver { get; }
    public BlobContainerClient Renders { get; }
    public DeterministicTestRenderEngine Engine { get; } = new();

    public static RenderTaskMessage Image(string jobId, string itemId, int size = 64, string model = "demo", long seed = 1) =>
        new(jobId, itemId, model, RenderTaskKinds.Image, new RenderTaskParams
        {
            Prompt = $"a red star on blue, {itemId}", NegativePrompt = "blurry", Seed = seed, Width = size, Height = size, Steps = 4,
            GuidanceScale = 5, Sampler = "ddim", Quantization = "int8-dynamic",
        });

    public static RenderTaskMessage Video(string jobId, string itemId, int frames = 3) =>
        Image(jobId, itemId) with { Kind = RenderTaskKinds.Video, Params = Image(jobId, itemId).Params with { Video = new VideoParams(frames, 8, 1.0) } };

    /// <summary>Records the job and its items as ingest does, then sends the tasks (each <paramref name="copies"/> times).</summary>
    /// <param name="withhold">Items recorded but not sent (a test sends its own message for them).</param>
    public async Task SubmitAsync(string jobId, IReadOnlyList<RenderTaskMessage> tasks, int copies = 1, params string[] withhold)
    {
        var outgoing = tasks.Select(OutgoingTasks.From).ToList();
        await State.CreateJobAsync(new NewJob(jobId, $"test/{jobId}.json", Convert.ToHexStringLower(SHA256.HashData(
            JsonSerializer.SerializeToUtf8Bytes(tasks))), tasks.Count));
        await State.AddItemsAsync(jobId, tasks.Zip(outgoing, (t, o) => (t, o.MessageId)).ToList());
        await State.MarkIngestCompletedAsync(jobId, ItemPartitionTotals.Of(tasks.Select(t => t.ItemId)));
        var sent = outgoing.Where((_, i) => !withhold.Contains(tasks[i].ItemId)).ToList();
        for (var i = 0; i < copies; i++) await Sender.SendAsync(sent);
    }

    /// <summary>A worker over this deployment; <paramref name="faults"/> (a <see cref="FaultInjectionPolicy"/>, say) sits in
    /// its output writer's blob pipeline.</summary>
    public RenderWorkerService Worker(WorkerOptions? options = null, HttpPipelinePolicy? faults = null, IRenderEngine? engine = null,
        ILoggerFactory? logs = null)
    {
        logs ??= NullLoggerFactory.Instance;
        var clientOptions = ResilientBlobWriter.ClientOptions(FastRetries);
        if (faults is not null) clientOptions.AddPolicy(faults, HttpPipelinePosition.PerRetry);
        var writer = new ResilientBlobWriter(new BlobServiceClient(_azurite.ConnectionString, clientOptions)
            .GetBlobContainerClient(Blobs.RendersContainer), FastRetries, logs.CreateLogger<ResilientBlobWriter>());
        // The job tracker as the host registers it: the report and gallery writer runs when a job ends.
        var tracker = new JobTracker(State, [new JobReportWriter(State, writer, logs.CreateLogger<JobReportWriter>())], logs.CreateLogger<JobTracker>());
        return new RenderWorkerService(Receiver, engine ?? Engine, tracker,
            new RenderOutputWriter(writer, logs.CreateLogger<RenderOutputWriter>()),
            new WorkerReadiness(), new WorkerIdentity(),
            Options.Create(options ?? new WorkerOptions { BatchSize = 4, DrainTimeout = TimeSpan.FromSeconds(10) }),
            Options.Create(Transport), logs.CreateLogger<RenderWorkerService>());
    }

    /// <summary>Waits until the job has ended (or fails the test after <paramref name="timeout"/>).</summary>
    public async Task<JobRecord> WaitForJobEndAsync(string jobId, TimeSpan? timeout = null)
    {
        var deadline = DateTime.UtcNow + (timeout ?? TimeSpan.FromSeconds(60));
        while (true)
        {
            var job = await State.GetJobAsync(jobId);
            if (job is not null && JobStatuses.IsEnded(job.Status)) return job;
            if (DateTime.UtcNow > deadline)
                throw new TimeoutException($"job {jobId} did not end: {(job is null ? "no job" : $"{job.Status}, {job.Counts}")}");
            await Task.Delay(100);
        }
    }

    public async Task WaitUntilAsync(Func<Task<bool>> condition, string what, TimeSpan? timeout = null)
    {
        var deadline = DateTime.UtcNow + (timeout ?? TimeSpan.FromSeconds(30));
        while (!await condition())
        {
            if (DateTime.UtcNow > deadline) throw new TimeoutException($"timed out waiting for {what}");
            await Task.Delay(100);
        }
    }

    public async Task<List<BlobItem>> ListRendersAsync(string prefix)
    {
        var blobs = new List<BlobItem>();
        if (!await Renders.ExistsAsync()) return blobs;
        await foreach (var blob in Renders.GetBlobsAsync(BlobTraits.Metadata, BlobStates.None, prefix, default)) blobs.Add(blob);
        return blobs;
    }

    public async Task<byte[]> DownloadAsync(string blob) => (await Renders.GetBlobClient(blob).DownloadContentAsync()).Value.Content.ToArray();

    public async Task<RenderSidecar> SidecarAsync(string jobId, string itemId) =>
        RenderSidecar.Parse(BinaryData.FromBytes(await DownloadAsync(BlobLayout.Sidecar(jobId, itemId))))!;

    /// <summary>Tasks left on the task queue (visible or locked).</summary>
    public async Task<int> QueueLengthAsync() =>
        (await _azurite.QueueService().GetQueueClient(Transport.QueueName).GetPropertiesAsync()).Value.ApproximateMessagesCount;

    public static string Sha256(byte[] bytes) => Convert.ToHexStringLower(SHA256.HashData(bytes));
}
