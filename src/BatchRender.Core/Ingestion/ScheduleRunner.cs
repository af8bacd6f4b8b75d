using System.Text.Json;
using Azure;
using Azure.Data.Tables;
using Azure.Storage.Blobs;
using Azure.Storage.Blobs.Models;
using BatchRender.Core.Configuration;
using BatchRender.Core.Manifests;
using BatchRender.Core.Schedules;
using BatchRender.Core.Storage;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;

namespace BatchRender.Core.Ingestion;

/// <summary>One occurrence a run started (or found already started).</summary>
public sealed record ScheduledJobStart(string Schedule, DateTimeOffset Occurrence, string JobId, IngestResult? Result, bool ClaimedElsewhere);

/// <summary>
/// The timer's work: read every schedule in the <c>schedules</c> container, and start one job per due occurrence.
/// Each schedule remembers the instant it was checked up to (a row in the schedules table). Each occurrence is
/// claimed with a create-only row before its job is ingested, so a timer that fires twice, or two instances running
/// at once, start it once; a claim whose holder died before the job was recorded is taken over after
/// <see cref="ClaimLease"/>. An invalid schedule gets <c>renders/_schedules/{name}/errors.json</c> and is skipped.
/// </summary>
public sealed class ScheduleRunner
{
    public static readonly TimeSpan ClaimLease = TimeSpan.FromMinutes(5);
    private const string CheckpointPartition = "checkpoint";
    private static readonly JsonSerializerOptions Json = new(JsonSerializerDefaults.Web) { WriteIndented = true };

    private readonly ScheduleParser _parser;
    private readonly IngestionService _ingestion;
    private readonly BlobContainerClient _schedules;
    private readonly BlobContainerClient _manifests;
    private readonly TableClient _table;
    private readonly ResilientBlobWriter _renders;
    private readonly TimeProvider _time;
    private readonly ILogger<ScheduleRunner> _logger;

    public ScheduleRunner(ScheduleParser parser, IngestionService ingestion, BlobServiceClient blobs, TableServiceClient tables,
        ResilientBlobWriter renders, IOptions<BlobOptions> blobOptions, IOptions<StateOptions> stateOptions, TimeProvider? time = null,
        ILogger<ScheduleRunner>? logger = null)
    {
        _parser = parser;
        _ingestion = ingestion;
        _schedules = blobs.GetBlobContainerClient(blobOptions.Value.SchedulesContainer);
        _manifests = blobs.GetBlobContainerClient(blobOptions.Value.ManifestsContainer);
        _table = tables.GetTableClient(stateOptions.Value.SchedulesTable);
        _renders = renders;
        _time = time ?? TimeProvider.System;
        _logger = logger ?? NullLogger<ScheduleRunner>.Instance;
    }

    /// <summary>Starts the jobs of every occurrence due since the last run. A schedule seen for the first time starts
    /// counting now (it does not catch up on the past).</summary>
    public async Task<IReadOnlyList<ScheduledJobStart>> RunDueAsync(CancellationToken cancellationToken = default)
    {
        await _table.CreateIfNotExistsAsync(cancellationToken);
        await _schedules.CreateIfNotExistsAsync(cancellationToken: cancellationToken);
        var started = new List<ScheduledJobStart>();
        await foreach (var blob in _schedules.GetBlobsAsync(BlobTraits.None, BlobStates.None, prefix: null, cancellationToken))
        {
            if (!blob.Name.EndsWith(".json", StringComparison.Ordinal) || blob.Name.Contains('/')) continue;
            try
            {
                started.AddRange(await RunScheduleAsync(blob.Name, cancellationToken));
            }
            catch (Exception e) when (e is not OperationCanceledException)
            {
                // One broken schedule must not stop the others; the next run tries it again.
                _logger.LogError(e, "Schedule {Blob} could not be run", blob.Name);
            }
        }
        return started;
    }

    private async Task<IReadOnlyList<ScheduledJobStart>> RunScheduleAsync(string blobName, CancellationToken cancellationToken)
    {
        var blob = _schedules.GetBlobClient(blobName);
        var download = await blob.DownloadContentAsync(cancellationToken);
        var etag = download.Value.Details.ETag;
        ScheduleParseResult parsed;
        await using (var stream = download.Value.Content.ToStream())
            parsed = await _parser.ParseAsync(stream, blobName, cancellationToken);
        if (parsed.Schedule is not { } schedule)
        {
            _logger.LogWarning("Schedule {Blob} is invalid ({Count} problem(s)); see {Errors}", blobName, parsed.TotalProblems, parsed.ErrorsBlobName);
            await _renders.OverwriteAsync(parsed.ErrorsBlobName, BinaryData.FromObjectAsJson(ScheduleErrorsDocument.From(parsed), Json),
                "application/json", cancellationToken);
            return [];
        }

        var now = _time.GetUtcNow();
        var checkpoint = await GetOrCreateCheckpointAsync(schedule.Name, now, cancellationToken);
        var due = schedule.DueBetween(checkpoint.CheckedUntil, now);
        var started = new List<ScheduledJobStart>();
        foreach (var occurrence in due.Occurrences)
        {
            var jobId = schedule.JobIdFor(occurrence);
            if (!await ClaimAsync(schedule.Name, jobId, cancellationToken))
            {
                started.Add(new ScheduledJobStart(schedule.Name, occurrence, jobId, null, ClaimedElsewhere: true));
                continue;
            }
            var result = schedule.ManifestBlob is { } manifestBlob
                ? await _ingestion.IngestBlobAsync(manifestBlob, jobId, cancellationToken)
                : await _ingestion.IngestAsync(
                    ct => OpenRangeAsync(blob, etag, schedule.InlineManifest!, ct),
                    new ManifestSource(blobName, new BlobManifestInputs(_manifests, "")) { AssignedJobId = jobId }, "", cancellationToken);
            await MarkStartedAsync(schedule.Name, jobId, result.Accepted, cancellationToken);
            _logger.LogInformation("Schedule {Schedule}: occurrence {Occurrence:u} started job {JobId} ({Outcome})",
                schedule.Name, occurrence, jobId, result.Accepted ? $"{result.TasksEnqueued} tasks" : "invalid manifest");
            started.Add(new ScheduledJobStart(schedule.Name, occurrence, jobId, result, ClaimedElsewhere: false));
        }
        await AdvanceCheckpointAsync(checkpoint, due.CheckedUntil, cancellationToken);
        return started;
    }

    private static async Task<Stream> OpenRangeAsync(BlobClient blob, ETag etag, ManifestRange range, CancellationToken ct)
    {
        var download = await blob.DownloadStreamingAsync(new BlobDownloadOptions
        {
            Range = new HttpRange(range.Offset, range.Length),
            Conditions = new BlobRequestConditions { IfMatch = etag }, // the same version that was parsed
        }, ct);
        return download.Value.Content;
    }

    // ---- table rows: one checkpoint per schedule, one claim per occurrence -----------------------------------------

    private sealed record Checkpoint(string Schedule, DateTimeOffset CheckedUntil, ETag ETag);

    private async Task<Checkpoint> GetOrCreateCheckpointAsync(string schedule, DateTimeOffset now, CancellationToken ct)
    {
        var existing = await _table.GetEntityIfExistsAsync<TableEntity>(CheckpointPartition, schedule, cancellationToken: ct);
        if (existing.HasValue)
            return new Checkpoint(schedule, existing.Value!.GetDateTimeOffset("CheckedUntil")!.Value, existing.Value.ETag);
        try
        {
            var created = await _table.AddEntityAsync(new TableEntity(CheckpointPartition, schedule) { ["CheckedUntil"] = now }, ct);
            return new Checkpoint(schedule, now, created.Headers.ETag ?? ETag.All);
        }
        catch (RequestFailedException e) when (e.Status == 409)
        {
            return await GetOrCreateCheckpointAsync(schedule, now, ct); // another instance created it first
        }
    }

    private async Task AdvanceCheckpointAsync(Checkpoint checkpoint, DateTimeOffset checkedUntil, CancellationToken ct)
    {
        if (checkedUntil <= checkpoint.CheckedUntil) return;
        try
        {
            await _table.UpdateEntityAsync(new TableEntity(CheckpointPartition, checkpoint.Schedule) { ["CheckedUntil"] = checkedUntil },
                checkpoint.ETag, TableUpdateMode.Replace, ct);
        }
        catch (RequestFailedException e) when (e.Status == 412)
        {
            // Another instance moved it on; the claims kept us from starting anything twice.
        }
    }

    /// <summary>True when this caller may ingest the occurrence's job.</summary>
    private async Task<bool> ClaimAsync(string schedule, string jobId, CancellationToken ct)
    {
        var now = _time.GetUtcNow();
        try
        {
            await _table.AddEntityAsync(new TableEntity(schedule, jobId) { ["ClaimedAt"] = now, ["Started"] = false }, ct);
            return true;
        }
        catch (RequestFailedException e) when (e.Status == 409)
        {
        }
        var claim = (await _table.GetEntityAsync<TableEntity>(schedule, jobId, cancellationToken: ct)).Value;
        if (claim.GetBoolean("Started") == true || now - claim.GetDateTimeOffset("ClaimedAt") < ClaimLease) return false;
        try
        {
            // The holder died before starting the job: take the claim over (ingest is idempotent by job id anyway).
            claim["ClaimedAt"] = now;
            await _table.UpdateEntityAsync(claim, claim.ETag, TableUpdateMode.Replace, ct);
            return true;
        }
        catch (RequestFailedException e) when (e.Status == 412)
        {
            return false;
        }
    }

    private async Task MarkStartedAsync(string schedule, string jobId, bool accepted, CancellationToken ct) =>
        await _table.UpdateEntityAsync(new TableEntity(schedule, jobId) { ["Started"] = true, ["Accepted"] = accepted }, ETag.All,
            TableUpdateMode.Merge, ct);
}
