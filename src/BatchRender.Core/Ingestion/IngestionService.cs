using System.Diagnostics;
using System.Text.Json;
using Azure;
using Azure.Storage.Blobs;
using Azure.Storage.Blobs.Models;
using BatchRender.Core.Configuration;
using BatchRender.Core.Manifests;
using BatchRender.Core.Messages;
using BatchRender.Core.State;
using BatchRender.Core.Storage;
using BatchRender.Core.Telemetry;
using BatchRender.Core.Transport;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;

namespace BatchRender.Core.Ingestion;

/// <summary>What became of a manifest.</summary>
/// <param name="Accepted">False: the manifest is invalid (see <see cref="Validation"/>); nothing was enqueued.</param>
/// <param name="AlreadyIngested">The same manifest had been ingested before under this job id: nothing was sent again.</param>
public sealed record IngestResult(
    string JobId, bool Accepted, ManifestValidationResult Validation, int TasksEnqueued, bool AlreadyIngested, JobRecord? Job)
{
    public IReadOnlyList<ManifestProblem> Problems => Validation.Problems;
}

/// <summary>
/// Manifest in, render tasks out (DESIGN.md "Flow"): pass one validates the whole stream; an invalid manifest gets
/// <c>_job/errors.json</c> and nothing else. A valid one is copied to <c>_job/manifest.json</c>, recorded as a job with
/// its items, and pass two streams the expansion onto the queue in chunks (items inserted before their tasks are sent,
/// the next chunk's inserts overlapping the previous chunk's sends), so memory stays flat however long the manifest.
/// Ingesting the same manifest again (a redelivered blob event, a resubmission) is safe: an interrupted ingest
/// resumes, a finished one is left alone.
/// </summary>
public sealed class IngestionService
{
    /// <summary>Items expanded, recorded and sent together: enough for about one full 100-entity transaction per item
    /// partition (smaller ones cost a request each: Azurite took 19 s to record 10k items 16 to a transaction), few
    /// enough that memory stays flat (a few MB).</summary>
    private const int ChunkSize = 100 * State.ItemPartitions.Count;
    private static readonly JsonSerializerOptions Json = new(JsonSerializerDefaults.Web) { WriteIndented = true };

    private readonly ManifestValidator _validator;
    private readonly ManifestExpander _expander;
    private readonly JobTracker _tracker;
    private readonly IRenderTaskSender _sender;
    private readonly ResilientBlobWriter _renders;
    private readonly BlobContainerClient _manifests;
    private readonly ILogger<IngestionService> _logger;

    public IngestionService(ManifestValidator validator, ManifestExpander expander, JobTracker tracker, IRenderTaskSender sender,
        ResilientBlobWriter renders, BlobServiceClient blobs, IOptions<BlobOptions> blobOptions, ILogger<IngestionService>? logger = null)
    {
        _validator = validator;
        _expander = expander;
        _tracker = tracker;
        _sender = sender;
        _renders = renders;
        _manifests = blobs.GetBlobContainerClient(blobOptions.Value.ManifestsContainer);
        _logger = logger ?? NullLogger<IngestionService>.Instance;
    }

    /// <summary>Ingests a manifest blob of the <c>manifests</c> container (both passes read the same version, by ETag).</summary>
    public async Task<IngestResult> IngestBlobAsync(string blobName, string? assignedJobId = null, CancellationToken cancellationToken = default)
    {
        var blob = _manifests.GetBlobClient(blobName);
        ETag etag = (await blob.GetPropertiesAsync(cancellationToken: cancellationToken)).Value.ETag;
        var folder = ManifestExpander.FolderOf(blobName);
        var source = new ManifestSource(blobName, new BlobManifestInputs(_manifests, folder)) { AssignedJobId = assignedJobId };
        return await IngestAsync(
            ct => blob.OpenReadAsync(new BlobOpenReadOptions(allowModifications: false) { Conditions = new BlobRequestConditions { IfMatch = etag } }, ct),
            source, folder, cancellationToken);
    }

    /// <summary>
    /// Ingests a manifest from a stream (the CLI's <c>submit</c>, the HTTP <c>POST /api/jobs</c>). A stream that cannot
    /// seek is spooled to a temporary file first: the two passes must read the same bytes. Inpaint inputs are looked up
    /// through <paramref name="inputs"/>; <paramref name="inputsPrefix"/> is where workers find them in the
    /// <c>manifests</c> container.
    /// </summary>
    public async Task<IngestResult> IngestStreamAsync(Stream manifest, string sourceName, IManifestInputs inputs, string inputsPrefix = "",
        string? assignedJobId = null, CancellationToken cancellationToken = default)
    {
        Stream seekable = manifest;
        if (!manifest.CanSeek)
        {
            var path = Path.Combine(Path.GetTempPath(), $"batchrender-{Guid.NewGuid():N}.json");
            seekable = new FileStream(path, FileMode.CreateNew, FileAccess.ReadWrite, FileShare.Read, 81920,
                FileOptions.DeleteOnClose | FileOptions.Asynchronous);
            await manifest.CopyToAsync(seekable, cancellationToken);
            seekable.Position = 0;
        }
        try
        {
            var start = seekable.Position;
            var source = new ManifestSource(sourceName, inputs) { AssignedJobId = assignedJobId };
            return await IngestAsync(_ =>
            {
                seekable.Position = start;
                return Task.FromResult<Stream>(new NonClosingStream(seekable));
            }, source, inputsPrefix, cancellationToken);
        }
        finally
        {
            if (!ReferenceEquals(seekable, manifest)) await seekable.DisposeAsync();
        }
    }

    /// <summary>The two passes over a manifest that <paramref name="open"/> opens afresh each time.</summary>
    public async Task<IngestResult> IngestAsync(Func<CancellationToken, Task<Stream>> open, ManifestSource source, string inputsPrefix,
        CancellationToken cancellationToken = default)
    {
        using var activity = BatchRenderTelemetry.ActivitySource.StartActivity("ingest", ActivityKind.Producer);
        activity?.SetTag("batchrender.manifest", source.Name);
        var clock = Stopwatch.StartNew();

        ManifestValidationResult validation;
        await using (var stream = await open(cancellationToken))
            validation = await _validator.ValidateAsync(stream, source, cancellationToken);
        activity?.SetTag("batchrender.job_id", validation.JobId);

        if (!validation.IsValid)
        {
            _logger.LogWarning("Manifest {Source} rejected with {Count} problem(s); errors at {Errors}",
                source.Name, validation.TotalProblems, BlobLayout.Errors(validation.JobId));
            await _renders.OverwriteAsync(BlobLayout.Errors(validation.JobId),
                BinaryData.FromObjectAsJson(ManifestErrorsDocument.From(validation), Json), "application/json", cancellationToken);
            return new IngestResult(validation.JobId, false, validation, 0, false, null);
        }

        var jobId = validation.JobId;
        JobRecord job;
        bool created;
        try
        {
            (job, created) = await _tracker.Store.CreateJobAsync(new NewJob(jobId, source.Name, validation.ContentSha256, validation.ItemCount,
                validation.Warnings.Select(w => w.ToString()).ToList()), cancellationToken);
        }
        catch (JobConflictException e)
        {
            // Not written to the existing job's folder: that job is valid and its files are its own.
            var conflict = validation with
            {
                Problems = [new ManifestProblem("$.jobId", e.Message)],
                TotalProblems = 1,
            };
            _logger.LogWarning("Manifest {Source} rejected: {Problem}", source.Name, e.Message);
            return new IngestResult(jobId, false, conflict, 0, false, null);
        }
        if (!created && job.IngestCompleted)
        {
            _logger.LogInformation("Manifest {Source} was already ingested as job {JobId}; nothing sent again", source.Name, jobId);
            return new IngestResult(jobId, true, validation, 0, true, job);
        }

        await _renders.WriteStreamAsync(BlobLayout.Manifest(jobId), open, validation.ContentSha256, "application/json", cancellationToken);

        var sent = 0;
        var validated = clock.Elapsed;
        TimeSpan recording = TimeSpan.Zero, waitingForSends = TimeSpan.Zero;   // where pass two's time goes (logged)
        var partitionTotals = new ItemPartitionTotals();
        await using (var stream = await open(cancellationToken))
        {
            Task pendingSend = Task.CompletedTask;
            await foreach (var chunk in Chunks(_expander.ExpandAsync(stream, validation, inputsPrefix, cancellationToken), cancellationToken))
            {
                var step = Stopwatch.StartNew();
                foreach (var message in chunk) partitionTotals.Add(message.ItemId);
                await _tracker.Store.AddItemsAsync(jobId, chunk.Select(m => (m, m.ComputeMessageId())).ToList(), cancellationToken);
                recording += step.Elapsed;
                step.Restart();
                await pendingSend;
                waitingForSends += step.Elapsed;
                var tasks = chunk.Select(OutgoingTasks.From).ToList();
                pendingSend = _sender.SendAsync(tasks, cancellationToken);
                sent += tasks.Count;
                _logger.LogDebug("Job {JobId}: {Sent} task(s) sent in {Seconds:0.0} s", jobId, sent, clock.Elapsed.TotalSeconds);
            }
            var last = Stopwatch.StartNew();
            await pendingSend;
            waitingForSends += last.Elapsed;
        }
        await _tracker.MarkIngestCompletedAsync(jobId, partitionTotals, cancellationToken);
        BatchRenderTelemetry.TasksEnqueued.Add(sent);
        BatchRenderTelemetry.IngestDuration.Record(clock.Elapsed.TotalSeconds);
        _logger.LogInformation(
            "Job {JobId}: {Count} task(s) enqueued from {Source} in {Seconds:0.0} s (validation {Validation:0.0} s, recording items {Recording:0.0} s, waiting on sends {Sends:0.0} s){Resumed}",
            jobId, sent, source.Name, clock.Elapsed.TotalSeconds, validated.TotalSeconds, recording.TotalSeconds, waitingForSends.TotalSeconds,
            created ? "" : " (an interrupted ingest resumed)");
        return new IngestResult(jobId, true, validation, sent, false, await _tracker.Store.GetJobAsync(jobId, cancellationToken));
    }

    public Task<JobRecord?> GetStatusAsync(string jobId, CancellationToken cancellationToken = default) =>
        _tracker.GetStatusAsync(jobId, cancellationToken);

    public Task<JobRecord?> CancelJobAsync(string jobId, CancellationToken cancellationToken = default) =>
        _tracker.CancelJobAsync(jobId, cancellationToken);

    private static async IAsyncEnumerable<List<RenderTaskMessage>> Chunks(IAsyncEnumerable<RenderTaskMessage> messages,
        [System.Runtime.CompilerServices.EnumeratorCancellation] CancellationToken cancellationToken)
    {
        var chunk = new List<RenderTaskMessage>(ChunkSize);
        await foreach (var message in messages.WithCancellation(cancellationToken))
        {
            chunk.Add(message);
            if (chunk.Count == ChunkSize)
            {
                yield return chunk;
                chunk = new List<RenderTaskMessage>(ChunkSize);
            }
        }
        if (chunk.Count > 0) yield return chunk;
    }

    /// <summary>Lets each pass dispose "its" stream while the spooled file lives on for the next pass.</summary>
    private sealed class NonClosingStream(Stream inner) : Stream
    {
        public override bool CanRead => true;
        public override bool CanSeek => inner.CanSeek;
        public override bool CanWrite => false;
        public override long Length => inner.Length;
        public override long Position { get => inner.Position; set => inner.Position = value; }
        public override void Flush() { }
        public override int Read(byte[] buffer, int offset, int count) => inner.Read(buffer, offset, count);
        public override ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default) => inner.ReadAsync(buffer, cancellationToken);
        public override Task<int> ReadAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) =>
            inner.ReadAsync(buffer, offset, count, cancellationToken);
        public override long Seek(long offset, SeekOrigin origin) => inner.Seek(offset, origin);
        public override void SetLength(long value) => throw new NotSupportedException();
        public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();
    }
}
