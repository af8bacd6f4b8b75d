using Azure.Storage.Blobs;
using BatchRender.Core.Configuration;
using BatchRender.Core.Ingestion;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace BatchRender.Cli.Ingestion;

public sealed class LocalIngestOptions
{
    /// <summary>How often the <c>manifests</c> container is listed for new manifests.</summary>
    public TimeSpan ManifestPollInterval { get; set; } = TimeSpan.FromSeconds(5);
    /// <summary>How often due schedules are started (the Functions timer's period).</summary>
    public TimeSpan ScheduleInterval { get; set; } = TimeSpan.FromMinutes(1);
}

/// <summary>
/// The local stand-in for the Event Grid blob trigger and the timer (<c>batchrender ingest</c>, and the demo): lists the
/// <c>manifests</c> container for manifest blobs (<c>*.json</c>) it has not seen at their current ETag and ingests each
/// with the same <see cref="IngestionService"/> the Functions app uses (which leaves a job already recorded from the
/// same manifest alone), and runs the <see cref="ScheduleRunner"/> every <see cref="LocalIngestOptions.ScheduleInterval"/>.
/// </summary>
public sealed class LocalIngestService(IngestionService ingestion, ScheduleRunner schedules, BlobServiceClient blobs, IOptions<BlobOptions> blobOptions,
    IOptions<LocalIngestOptions> options, TimeProvider time, ILogger<LocalIngestService> logger) : BackgroundService
{
    private readonly BlobContainerClient _manifests = blobs.GetBlobContainerClient(blobOptions.Value.ManifestsContainer);
    private readonly Dictionary<string, Azure.ETag> _seen = new(StringComparer.Ordinal);

    /// <summary>Raised after each manifest is ingested (accepted or not).</summary>
    public event Action<IngestResult>? Ingested;

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        await _manifests.CreateIfNotExistsAsync(cancellationToken: stoppingToken);
        logger.LogInformation("Ingest loop: polling container {Container} every {Manifests}, schedules every {Schedules}",
            _manifests.Name, options.Value.ManifestPollInterval, options.Value.ScheduleInterval);
        var nextSchedules = time.GetUtcNow();
        while (!stoppingToken.IsCancellationRequested)
        {
            try
            {
                await PollManifestsAsync(stoppingToken);
                if (time.GetUtcNow() >= nextSchedules)
                {
                    foreach (var start in await schedules.RunDueAsync(stoppingToken))
                        logger.LogInformation("Schedule {Schedule}: occurrence {Occurrence:u} → job {JobId}", start.Schedule, start.Occurrence, start.JobId);
                    nextSchedules = time.GetUtcNow() + options.Value.ScheduleInterval;
                }
            }
            catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
            {
                break;
            }
            catch (Exception e)
            {
                logger.LogError(e, "Ingest poll failed; trying again in {Interval}", options.Value.ManifestPollInterval);
            }
            try { await Task.Delay(options.Value.ManifestPollInterval, time, stoppingToken); }
            catch (OperationCanceledException) { break; }
        }
    }

    /// <summary>One pass over the container: every manifest blob not yet seen at its current ETag is ingested.</summary>
    public async Task PollManifestsAsync(CancellationToken cancellationToken)
    {
        await foreach (var blob in _manifests.GetBlobsAsync(cancellationToken: cancellationToken))
        {
            if (!blob.Name.EndsWith(".json", StringComparison.OrdinalIgnoreCase)) continue; // inpaint inputs live beside manifests
            if (_seen.TryGetValue(blob.Name, out var etag) && etag == blob.Properties.ETag) continue;
            var result = await ingestion.IngestBlobAsync(blob.Name, cancellationToken: cancellationToken);
            _seen[blob.Name] = blob.Properties.ETag ?? default;
            if (!result.Accepted)
                logger.LogWarning("Manifest {Blob} rejected ({Count} problem(s)); see renders/{JobId}/_job/errors.json", blob.Name, result.Validation.TotalProblems, result.JobId);
            else if (!result.AlreadyIngested)
                logger.LogInformation("Manifest {Blob} → job {JobId}: {Count} task(s) enqueued", blob.Name, result.JobId, result.TasksEnqueued);
            Ingested?.Invoke(result);
        }
    }
}
