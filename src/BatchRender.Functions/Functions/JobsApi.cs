using Azure.Storage.Blobs;
using BatchRender.Core.Configuration;
using BatchRender.Core.Ingestion;
using BatchRender.Core.Manifests;
using BatchRender.Core.State;
using BatchRender.Core.Storage;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Mvc;
using Microsoft.Azure.Functions.Worker;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace BatchRender.Functions.Functions;

/// <summary>
/// The jobs HTTP API: <c>POST /api/jobs</c> submits a manifest (the request body), <c>GET /api/jobs/{id}</c> reads a job's
/// status, <c>POST /api/jobs/{id}/cancel</c> cancels it. Function-level keys guard all three.
/// </summary>
public sealed class JobsApi(IngestionService ingestion, BlobServiceClient blobs, IOptions<BlobOptions> blobOptions, ILogger<JobsApi> logger)
{
    /// <summary>
    /// Ingests the body as a manifest. 202 with the job id when accepted; 400 listing every problem (each with its JSON
    /// path) when not, in which case nothing was enqueued and the problems are also in <c>_job/errors.json</c>; 409 when
    /// the job id is taken by a different manifest. Inpaint paths are resolved from the root of the <c>manifests</c>
    /// container (upload the inputs there first).
    /// </summary>
    [Function("SubmitJob")]
    public async Task<IActionResult> SubmitAsync(
        [HttpTrigger(AuthorizationLevel.Function, "post", Route = "jobs")] HttpRequest request, CancellationToken cancellationToken)
    {
        var inputs = new BlobManifestInputs(blobs.GetBlobContainerClient(blobOptions.Value.ManifestsContainer), "");
        IngestResult result;
        try
        {
            result = await ingestion.IngestStreamAsync(request.Body, "http: POST /api/jobs", inputs, "", cancellationToken: cancellationToken);
        }
        catch (JobConflictException e)
        {
            return new ConflictObjectResult(new { jobId = e.JobId, error = e.Message });
        }
        if (!result.Accepted)
        {
            logger.LogInformation("Submitted manifest rejected: {Count} problem(s) (job {JobId})", result.Validation.TotalProblems, result.JobId);
            return new BadRequestObjectResult(new SubmitRejected(result.JobId, result.Validation.TotalProblems,
                result.Problems.Select(p => new ProblemView(p.Path, p.Message)).ToList(), ErrorsBlob(result.JobId)));
        }
        return new AcceptedResult($"/api/jobs/{result.JobId}", new SubmitAccepted(result.JobId, result.TasksEnqueued, result.AlreadyIngested,
            $"/api/jobs/{result.JobId}"));
    }

    [Function("GetJob")]
    public async Task<IActionResult> GetAsync(
        [HttpTrigger(AuthorizationLevel.Function, "get", Route = "jobs/{id}")] HttpRequest request, string id, CancellationToken cancellationToken)
    {
        var job = await ingestion.GetStatusAsync(id, cancellationToken);
        return job is null ? NotFound(id) : new OkObjectResult(JobView.From(job, blobOptions.Value));
    }

    [Function("CancelJob")]
    public async Task<IActionResult> CancelAsync(
        [HttpTrigger(AuthorizationLevel.Function, "post", Route = "jobs/{id}/cancel")] HttpRequest request, string id, CancellationToken cancellationToken)
    {
        var job = await ingestion.CancelJobAsync(id, cancellationToken);
        if (job is null) return NotFound(id);
        logger.LogInformation("Job {JobId} cancel requested: now {Status}", id, job.Status);
        return new OkObjectResult(JobView.From(job, blobOptions.Value));
    }

    private static NotFoundObjectResult NotFound(string id) => new(new { jobId = id, error = $"no job '{id}'" });

    private string ErrorsBlob(string jobId) => $"{blobOptions.Value.RendersContainer}/{BlobLayout.Errors(jobId)}";
}

public sealed record ProblemView(string Path, string Message);

public sealed record SubmitRejected(string JobId, int TotalProblems, IReadOnlyList<ProblemView> Problems, string ErrorsBlob);

public sealed record SubmitAccepted(string JobId, int TasksEnqueued, bool AlreadyIngested, string Status);

/// <summary>What <c>GET /api/jobs/{id}</c> returns.</summary>
public sealed record JobView(string JobId, string Status, ItemCounts Counts, DateTimeOffset CreatedAt, DateTimeOffset? StartedAt,
    DateTimeOffset? FinishedAt, bool CancelRequested, bool IngestCompleted, IReadOnlyList<string> Warnings, string Report, string Gallery)
{
    public static JobView From(JobRecord job, BlobOptions blobs) => new(job.JobId, job.Status, job.Counts, job.CreatedAt, job.StartedAt,
        job.FinishedAt, job.CancelRequested, job.IngestCompleted, job.Warnings,
        $"{blobs.RendersContainer}/{BlobLayout.Report(job.JobId)}", $"{blobs.RendersContainer}/{BlobLayout.Gallery(job.JobId)}");
}
