using System.Diagnostics;
using System.Text.Json;
using System.Text.Json.Serialization;
using BatchRender.Core.Ingestion;
using BatchRender.Core.Local;
using BatchRender.Core.Manifests;
using BatchRender.Core.Messages;
using BatchRender.Core.State;
using BatchRender.Core.Storage;
using BatchRender.Core.Transport;
using BatchRender.Model.Pipelines;
using BatchRender.Worker;
using BatchRender.Worker.Processing;
using BatchRender.Worker.Rendering;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace BatchRender.Cli.Benchmarks;

/// <summary><c>bench --json</c>'s "pipeline" object (DESIGN.md "CLI"), with the runs behind the headline numbers.</summary>
public sealed record PipelineBenchmarkResult(
    [property: JsonPropertyName("ingestTasksPerSecond")] double IngestTasksPerSecond,
    [property: JsonPropertyName("ingestPeakMemoryMb")] double IngestPeakMemoryMb,
    [property: JsonPropertyName("overheadShareOfRender")] double? OverheadShareOfRender,
    [property: JsonPropertyName("ingestRuns")] IReadOnlyList<IngestRun> IngestRuns,
    [property: JsonPropertyName("overhead")] OverheadMeasurement? Overhead,
    [property: JsonPropertyName("notes")] IReadOnlyList<string> Notes);

/// <param name="PeakWorkingSetMb">Peak working set of the process during the run.</param>
/// <param name="PeakManagedMb">Peak managed heap during the run (what a growing manifest would inflate).</param>
public sealed record IngestRun(
    [property: JsonPropertyName("items")] int Items,
    [property: JsonPropertyName("seconds")] double Seconds,
    [property: JsonPropertyName("tasksPerSecond")] double TasksPerSecond,
    [property: JsonPropertyName("peakWorkingSetMb")] double PeakWorkingSetMb,
    [property: JsonPropertyName("peakManagedMb")] double PeakManagedMb);

/// <param name="Model">What rendered: "demo", or a label saying it was another model directory.</param>
/// <param name="OverheadMsPerItem">The worker's wall time per item beyond the render, with each render replayed as a wait
/// of its measured length (the host's cores free, as on a GPU worker): what storage work the render does not hide.</param>
/// <param name="PipelineWorkMsPerItem">The worker's wall time per item with renders that take no time: its queue, state
/// and blob work alone, overlapped only with itself.</param>
public sealed record OverheadMeasurement(
    [property: JsonPropertyName("model")] string Model,
    [property: JsonPropertyName("items")] int Items,
    [property: JsonPropertyName("size")] int Size,
    [property: JsonPropertyName("steps")] int Steps,
    [property: JsonPropertyName("quantization")] string Quantization,
    [property: JsonPropertyName("renderMsPerItem")] double RenderMsPerItem,
    [property: JsonPropertyName("overheadMsPerItem")] double OverheadMsPerItem,
    [property: JsonPropertyName("pipelineWorkMsPerItem")] double PipelineWorkMsPerItem);

public sealed record PipelineBenchmarkOptions
{
    /// <summary>Manifest sizes ingested, each into a fresh queue and tables (default 10k, 50k, 100k items).</summary>
    public IReadOnlyList<int> IngestSizes { get; init; } = [10_000, 50_000, 100_000];
    /// <summary>Items of the job whose queue, state and blob work is timed for the overhead (a bulk job: its fixed costs, the
    /// report and the look at the whole job per finished partition, spread as over a nightly run).</summary>
    public int OverheadItems { get; init; } = 256;
    /// <summary>Model directory rendered for the overhead's denominator; null skips the overhead.</summary>
    public string? ModelDirectory { get; init; }
    public string ModelLabel { get; init; } = "demo";
    public int Size { get; init; } = 128;
    public int Steps { get; init; } = 20;
    public string Quantization { get; init; } = "int8-dynamic";
    public int Threads { get; init; }
}

/// <summary>
/// The pipeline benchmark, on Azurite (started if none is running): (1) ingest rate of generated manifests of growing
/// size through the real IngestionService to Storage Queues, with the process's peak memory per run, which must stay
/// flat; (2) the pipeline's own work per item (receive, item state, PNG and sidecar writes through the resilient
/// writer, state, complete) as a share of the model's render time for the same item.
/// </summary>
public sealed class PipelineBenchmark(IConfiguration configuration, ILoggerFactory loggers)
{
    private readonly ILogger _logger = loggers.CreateLogger<PipelineBenchmark>();

    public async Task<PipelineBenchmarkResult> RunAsync(PipelineBenchmarkOptions options, CancellationToken ct)
    {
        // The configured emulator when the configuration names one by its endpoints; otherwise a fresh in-memory one
        // for the ingest runs and another for the overhead. Never a real Azure account: this measures the pipeline on
        // Azurite. Queues are never deleted: Azurite collects a deleted queue's messages on its one thread, and with
        // the tens of thousands an ingest run leaves it stops answering for minutes.
        var configured = configuration["Storage:ConnectionString"] ?? configuration["Storage"];
        var external = configured is not null && configured.Contains("BlobEndpoint=http://127.0.0.1", StringComparison.Ordinal) ? configured : null;
        var notes = new List<string> { external is null
            ? "a fresh in-memory Azurite for the ingest runs and another for the overhead; Storage Queue transport"
            : $"Azurite at {external.Split(';').FirstOrDefault(p => p.StartsWith("BlobEndpoint", StringComparison.Ordinal))} (its bench-* queues are left: deleting them stalls Azurite); Storage Queue transport" };
        var work = Directory.CreateTempSubdirectory("batchrender-bench-pipeline-").FullName;
        try
        {
            var runs = await OnEmulatorAsync(external, async connectionString =>
            {
                var done = new List<IngestRun>();
                foreach (var size in options.IngestSizes)
                    done.Add(await IngestRunAsync(connectionString, work, size, ct));
                return done;
            }, ct);
            // On an emulator holding nothing else (when the bench owns it): a full Azurite is slower, which would be
            // charged to the pipeline.
            OverheadMeasurement? overhead = null;
            if (options.ModelDirectory is null) notes.Add("overhead not measured: no model to render (train the demo model with `batchrender train`)");
            else
            {
                overhead = await OverheadAsync(external, work, options, ct);
                notes.Add("overhead: the real worker over a job, the render replayed (the model's PNG handed back) as a wait of the render's measured " +
                          "time, as on a GPU worker whose host cores are free; pipelineWorkMsPerItem replays it in no time. A CPU-only worker shares " +
                          "its cores between the model and this storage work");
            }
            var largest = runs.MaxBy(r => r.Items)!;
            return new PipelineBenchmarkResult(largest.TasksPerSecond, largest.PeakWorkingSetMb,
                overhead is null ? null : Math.Round(overhead.OverheadMsPerItem / overhead.RenderMsPerItem, 4), runs, overhead, notes);
        }
        finally
        {
            try { Directory.Delete(work, recursive: true); } catch (IOException) { }
        }
    }

    private async Task<T> OnEmulatorAsync<T>(string? external, Func<string, Task<T>> measure, CancellationToken ct)
    {
        if (external is not null) return await measure(external);
        await using var azurite = await AzuriteLauncher.StartAsync(new AzuriteOptions { InMemory = true }, loggers.CreateLogger<AzuriteLauncher>(), ct);
        return await measure(azurite.ConnectionString);
    }

    private async Task<IngestRun> IngestRunAsync(string connectionString, string work, int items, CancellationToken ct)
    {
        var manifest = Path.Combine(work, $"bench-{items}.json");
        await WriteManifestAsync(manifest, $"bench-{items}-{Guid.NewGuid().ToString("N")[..8]}", items, 128, 20, ct);
        using var host = await StartHostAsync(connectionString, ct);
        var ingestion = host.Services.GetRequiredService<IngestionService>();

        GC.Collect();
        GC.WaitForPendingFinalizers();
        using var sampler = new MemorySampler();
        var clock = Stopwatch.StartNew();
        IngestResult result;
        await using (var stream = File.OpenRead(manifest))
            result = await ingestion.IngestStreamAsync(stream, manifest, new LocalFolderManifestInputs(work), cancellationToken: ct);
        var seconds = clock.Elapsed.TotalSeconds;
        var (workingSet, managed) = await sampler.StopAsync();
        if (!result.Accepted) throw new InvalidOperationException($"the generated manifest was rejected: {string.Join("; ", result.Validation.Describe())}");
        var run = new IngestRun(items, Math.Round(seconds, 2), Math.Round(result.TasksEnqueued / seconds, 0), Math.Round(workingSet / 1e6, 1), Math.Round(managed / 1e6, 1));
        _logger.LogInformation("Ingest of {Items:N0} items: {Rate:N0} tasks/s, peak working set {WorkingSet} MB, managed {Managed} MB",
            items, run.TasksPerSecond, run.PeakWorkingSetMb, run.PeakManagedMb);
        await DeleteHostResourcesAsync(host, ct);
        File.Delete(manifest);
        return run;
    }

    private async Task<OverheadMeasurement> OverheadAsync(string? external, string work, PipelineBenchmarkOptions options, CancellationToken ct)
    {
        // The denominator: the model's render time per item, rendered as a worker renders it (a batch of
        // Worker:BatchSize in one pass, after a warm-up pass; the median of three).
        var batchSize = configuration.GetSection(Core.Configuration.ConfigSections.Worker).Get<Core.Configuration.WorkerOptions>()?.BatchSize ?? new Core.Configuration.WorkerOptions().BatchSize;
        byte[] png;
        double renderMs;
        var quantization = WireNames.ParseQuantization(options.Quantization);
        using (var pipeline = HunyuanDiTPipeline.Load(new PipelineLoadOptions
               { ModelDirectory = options.ModelDirectory!, Device = "cpu", Quantization = quantization, Threads = options.Threads }))
        {
            var requests = Enumerable.Range(0, batchSize).Select(i => new RenderRequest
                { Prompt = "a red star in the top left corner", Seed = i, Width = options.Size, Height = options.Size, Steps = options.Steps }).ToList();
            pipeline.Render([requests[0] with { Steps = 1 }], cancellationToken: ct);
            var passes = new List<double>();
            png = [];
            for (var pass = 0; pass < 3; pass++)   // the median of three passes: one pass varies by 10 % here
            {
                var clock = Stopwatch.StartNew();
                png = pipeline.Render(requests, cancellationToken: ct)[0].Png;
                passes.Add(clock.Elapsed.TotalMilliseconds / batchSize);
            }
            renderMs = passes.Order().ElementAt(1);
        }

        // The numerator: the real worker's wall time per item beyond its renders, with the render replayed as a wait of its
        // measured time (overhead), and replayed in no time (the pipeline's own work); each on a fresh emulator.
        var replayed = await OnEmulatorAsync(external, cs => TimeWorkerAsync(cs, work, options, batchSize, png, TimeSpan.FromMilliseconds(renderMs), ct), ct);
        var instant = await OnEmulatorAsync(external, cs => TimeWorkerAsync(cs, work, options, batchSize, png, TimeSpan.Zero, ct), ct);
        return new OverheadMeasurement(options.ModelLabel, options.OverheadItems, options.Size, options.Steps, options.Quantization,
            Math.Round(renderMs, 1), Math.Round(replayed, 2), Math.Round(instant, 2));
    }

    /// <summary>
    /// The real worker (RenderWorkerService and everything under it: receive, admission, item state, PNG and sidecar writes
    /// through the resilient writer, completion, the job's report and gallery) over a job of OverheadItems, each render
    /// replaced by handing back <paramref name="png"/> after <paramref name="renderPerTask"/> per task of the group; the
    /// wall time per item beyond the renders' own. A warm-up job of one batch goes first (connections, JIT). The clock runs
    /// from the measured job's first render to its end (report and gallery written): the worker takes up that job's first
    /// batch while the warm-up's writes are still running, so its end would start the clock late.
    /// </summary>
    private async Task<double> TimeWorkerAsync(string connectionString, string work, PipelineBenchmarkOptions options, int batchSize, byte[] png,
        TimeSpan renderPerTask, CancellationToken ct)
    {
        var warmUpId = $"overhead-warmup-{Guid.NewGuid().ToString("N")[..8]}";
        var jobId = $"overhead-{Guid.NewGuid().ToString("N")[..8]}";
        var ended = new JobEndedSignals(warmUpId, jobId);
        var engine = new ReplayRenderEngine(png, renderPerTask, jobId);
        var builder = CliHost.CreateBuilder(HostSettings(connectionString), addCore: false);
        builder.Services.AddSingleton<IRenderEngine>(engine);
        builder.Services.AddBatchRenderWorker(builder.Configuration);
        builder.Services.AddSingleton<IJobEndedHandler>(ended);
        using var host = builder.Build();
        foreach (var (id, items) in new[] { (warmUpId, batchSize), (jobId, options.OverheadItems) })
        {
            var manifest = Path.Combine(work, $"{id}.json");
            await WriteManifestAsync(manifest, id, items, options.Size, options.Steps, ct);
            await using var stream = File.OpenRead(manifest);
            await host.Services.GetRequiredService<IngestionService>().IngestStreamAsync(stream, manifest, new LocalFolderManifestInputs(work), cancellationToken: ct);
        }

        await host.StartAsync(ct);
        var job = await ended.Of(jobId).WaitAsync(TimeSpan.FromMinutes(10), ct);
        var wall = Stopwatch.GetElapsedTime(engine.FirstMeasuredRender);
        if (job.Counts.Done != options.OverheadItems)
            throw new InvalidOperationException($"the overhead job ended {job.Status} with {job.Counts.Done} of {options.OverheadItems} items done");
        await DeleteHostResourcesAsync(host, ct);
        // The renders' own time is what the waits really took (a timer wait runs a little over what it is asked).
        var msPerItem = (wall - engine.MeasuredRenderTime).TotalMilliseconds / options.OverheadItems;
        _logger.LogInformation("Worker over {Items} items, render replayed at {Render:0} ms per task: {Wall:0.00} ms per item, {Ms:0.00} ms beyond the renders",
            options.OverheadItems, renderPerTask.TotalMilliseconds, wall.TotalMilliseconds / options.OverheadItems, msPerItem);
        return msPerItem;
    }

    /// <summary>The bench's render engine, never used elsewhere: every task gets the PNG the model rendered for the
    /// denominator, after <paramref name="renderPerTask"/> per task of the group (a wait: the cores stay free). It notes
    /// when the first task of <paramref name="measuredJobId"/> reached it and how long that job's renders took.</summary>
    private sealed class ReplayRenderEngine(byte[] png, TimeSpan renderPerTask, string measuredJobId) : IRenderEngine
    {
        private long _firstMeasuredRender, _measuredRenderTicks;

        /// <summary>Stopwatch timestamp of the measured job's first render.</summary>
        public long FirstMeasuredRender => Interlocked.Read(ref _firstMeasuredRender);
        public TimeSpan MeasuredRenderTime => TimeSpan.FromTicks(Interlocked.Read(ref _measuredRenderTicks));

        public Task PreloadAsync(string model, string quantization, CancellationToken cancellationToken = default) => Task.CompletedTask;

        public async Task<IReadOnlyList<TaskRenderOutcome>> RenderAsync(IReadOnlyList<RenderTaskMessage> group, CancellationToken cancellationToken = default)
        {
            var started = Stopwatch.GetTimestamp();
            var measured = group.Count(t => t.JobId == measuredJobId);
            if (measured > 0) Interlocked.CompareExchange(ref _firstMeasuredRender, started, 0);
            if (renderPerTask > TimeSpan.Zero) await Task.Delay(renderPerTask * group.Count, cancellationToken);
            if (measured > 0) Interlocked.Add(ref _measuredRenderTicks, Stopwatch.GetElapsedTime(started).Ticks * measured / group.Count);
            return group.Select(_ => TaskRenderOutcome.Rendered(new RenderedOutput
            {
                Png = png, ModelHash = "bench-replay", TimingsMs = new Dictionary<string, double> { ["render"] = renderPerTask.TotalMilliseconds },
            })).ToList();
        }
    }

    /// <summary>Completes per job when it ends (after its report and gallery: handlers run in registration order).</summary>
    private sealed class JobEndedSignals(params string[] jobIds) : IJobEndedHandler
    {
        private readonly Dictionary<string, TaskCompletionSource<JobRecord>> _ended = jobIds.ToDictionary(id => id,
            _ => new TaskCompletionSource<JobRecord>(TaskCreationOptions.RunContinuationsAsynchronously));

        public Task<JobRecord> Of(string jobId) => _ended[jobId].Task;

        public Task OnJobEndedAsync(JobRecord job, CancellationToken cancellationToken)
        {
            if (_ended.TryGetValue(job.JobId, out var ended)) ended.TrySetResult(job);
            return Task.CompletedTask;
        }
    }

    /// <summary>A Core host on the Azurite with a queue, tables and containers of its own.</summary>
    private async Task<IHost> StartHostAsync(string connectionString, CancellationToken ct) =>
        await CliHost.StartCoreAsync(HostSettings(connectionString), ct);

    private IConfiguration HostSettings(string connectionString)
    {
        var id = Guid.NewGuid().ToString("N")[..10];
        return new ConfigurationBuilder().AddConfiguration(configuration).AddInMemoryCollection(new Dictionary<string, string?>
        {
            ["Storage:ConnectionString"] = connectionString,
            ["Transport:Kind"] = "StorageQueue",
            ["Transport:QueueName"] = $"bench-{id}",
            ["Transport:PoisonQueueName"] = $"bench-{id}-poison",
            ["Blobs:ManifestsContainer"] = $"bench-manifests-{id}",
            ["Blobs:RendersContainer"] = $"bench-renders-{id}",
            ["Blobs:SchedulesContainer"] = $"bench-schedules-{id}",
            ["State:JobsTable"] = $"benchjobs{id}",
            ["State:ItemsTable"] = $"benchitems{id}",
            ["State:SchedulesTable"] = $"benchschedules{id}",
            ["Models:demo:Path"] = "models/demo",
        }).Build();
    }

    /// <summary>Deletes the run's tables and renders container; not its queues (see <see cref="RunAsync"/>).</summary>
    private static async Task DeleteHostResourcesAsync(IHost host, CancellationToken ct)
    {
        var s = host.Services;
        var state = s.GetRequiredService<Microsoft.Extensions.Options.IOptions<Core.Configuration.StateOptions>>().Value;
        var blobs = s.GetRequiredService<Microsoft.Extensions.Options.IOptions<Core.Configuration.BlobOptions>>().Value;
        var tables = s.GetRequiredService<Azure.Data.Tables.TableServiceClient>();
        await tables.DeleteTableAsync(state.JobsTable, ct);
        await tables.DeleteTableAsync(state.ItemsTable, ct);
        var blobService = s.GetRequiredService<Azure.Storage.Blobs.BlobServiceClient>();
        await blobService.GetBlobContainerClient(blobs.RendersContainer).DeleteIfExistsAsync(cancellationToken: ct);
        await host.StopAsync(ct);
    }

    /// <summary>A manifest of <paramref name="items"/> images, written as a stream (never whole in memory).</summary>
    public static async Task WriteManifestAsync(string path, string jobId, int items, int size, int steps, CancellationToken ct)
    {
        await using var file = File.Create(path);
        await using var json = new Utf8JsonWriter(file);
        json.WriteStartObject();
        json.WriteNumber("schemaVersion", 1);
        json.WriteString("jobId", jobId);
        json.WriteStartObject("defaults");
        json.WriteNumber("width", size);
        json.WriteNumber("height", size);
        json.WriteNumber("steps", steps);
        json.WriteEndObject();
        json.WriteStartArray("items");
        string[] prompts = ["a red star in the top left corner", "蓝色背景左上角有一个大的红色五角星", "a green square in the middle"];
        for (var i = 0; i < items; i++)
        {
            json.WriteStartObject();
            json.WriteString("id", $"item-{i:D6}");
            json.WriteString("prompt", prompts[i % prompts.Length]);
            json.WriteNumber("seed", i);
            json.WriteEndObject();
            if (json.BytesPending > 64 * 1024) await json.FlushAsync(ct);
        }
        json.WriteEndArray();
        json.WriteEndObject();
    }

    /// <summary>Samples the process's working set and managed heap every 20 ms; reports the peaks.</summary>
    private sealed class MemorySampler : IDisposable
    {
        private readonly CancellationTokenSource _stop = new();
        private readonly Task<(long WorkingSet, long Managed)> _task;

        public MemorySampler() => _task = Task.Run(async () =>
        {
            long workingSet = 0, managed = 0;
            using var process = Process.GetCurrentProcess();
            while (true)
            {
                process.Refresh();
                workingSet = Math.Max(workingSet, process.WorkingSet64);
                managed = Math.Max(managed, GC.GetTotalMemory(false));
                if (_stop.IsCancellationRequested) return (workingSet, managed);
                try { await Task.Delay(20, _stop.Token); } catch (OperationCanceledException) { }
            }
        });

        public Task<(long WorkingSet, long Managed)> StopAsync()
        {
            _stop.Cancel();
            return _task;
        }

        public void Dispose() => _stop.Dispose();
    }
}
