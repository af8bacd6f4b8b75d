using Azure.Storage.Blobs;
using BatchRender.Core.Ingestion;
using Microsoft.Azure.Functions.Worker;
using Microsoft.Extensions.Logging;

namespace BatchRender.Functions.Functions;

/// <summary>
/// A manifest dropped in the <c>manifests</c> container becomes a job (DESIGN.md "Flow"): validated, recorded and fanned
/// out as render tasks by <see cref="IngestionService"/>. The trigger's source is Event Grid (no container polling).
/// An invalid manifest is not an error of this function (its problems go to <c>_job/errors.json</c>, nothing is retried);
/// a transient failure throws, so the trigger redelivers the event, and the ingest resumes where it stopped.
/// </summary>
public sealed class IngestManifest(IngestionService ingestion, ILogger<IngestManifest> logger)
{
    /// <summary>Blobs in <c>manifests</c> that are not manifests: schedule templates (started by their schedule).</summary>
    public const string TemplatesFolder = "templates/";

    [Function(nameof(IngestManifest))]
    public async Task RunAsync(
        [BlobTrigger("manifests/{name}", Source = BlobTriggerSource.EventGrid, Connection = "Storage")] BlobClient blob,
        string name,
        CancellationToken cancellationToken)
    {
        if (!IsManifest(name))
        {
            // Inpaint inputs and templates live beside manifests; their events are expected and ignored.
            logger.LogDebug("Ignoring {Blob}: not a manifest (only *.json outside {Templates})", name, TemplatesFolder);
            return;
        }
        var result = await ingestion.IngestBlobAsync(blob.Name, cancellationToken: cancellationToken);
        if (!result.Accepted)
            logger.LogWarning("Manifest {Blob} rejected: {Count} problem(s), listed in renders/{JobId}/_job/errors.json",
                name, result.Validation.TotalProblems, result.JobId);
        else
            logger.LogInformation("Manifest {Blob} → job {JobId}: {Tasks} task(s) enqueued{Again}", name, result.JobId, result.TasksEnqueued,
                result.AlreadyIngested ? " (already ingested before)" : "");
    }

    public static bool IsManifest(string blobName) =>
        blobName.EndsWith(".json", StringComparison.OrdinalIgnoreCase) && !blobName.StartsWith(TemplatesFolder, StringComparison.Ordinal);
}
