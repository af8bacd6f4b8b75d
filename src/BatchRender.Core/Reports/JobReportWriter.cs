using System.Text.Json;
using BatchRender.Core.State;
using BatchRender.Core.Storage;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace BatchRender.Core.Reports;

/// <summary>
/// Writes <c>_job/report.json</c> and <c>_job/index.html</c> for an ended job, reading its items page by page from
/// the state store. Both are rewritten if the job is reported again (they describe the final state, so a rewrite
/// after a crash says the same thing).
/// </summary>
public sealed class JobReportWriter(JobStateStore store, ResilientBlobWriter renders, ILogger<JobReportWriter>? logger = null)
    : IJobEndedHandler
{
    private static readonly JsonSerializerOptions Json = new(JsonSerializerDefaults.Web) { WriteIndented = true };
    private readonly ILogger _logger = logger ?? NullLogger<JobReportWriter>.Instance;

    public Task OnJobEndedAsync(JobRecord job, CancellationToken cancellationToken) => WriteAsync(job, cancellationToken);

    public async Task<JobReport> WriteAsync(JobRecord job, CancellationToken cancellationToken = default)
    {
        var items = new List<JobReportItem>(job.Counts.Total);
        await foreach (var item in store.GetItemsAsync(job.JobId, cancellationToken))
            items.Add(JobReportItem.From(item));
        var report = new JobReport(job.JobId, job.Status, job.SourceManifest, job.CreatedAt, job.StartedAt, job.FinishedAt,
            job.Counts, job.Warnings, items);

        await renders.OverwriteAsync(BlobLayout.Report(job.JobId), BinaryData.FromObjectAsJson(report, Json), "application/json",
            cancellationToken);
        await renders.OverwriteAsync(BlobLayout.Gallery(job.JobId), BinaryData.FromString(GalleryPage.Render(report)),
            "text/html; charset=utf-8", cancellationToken);
        _logger.LogInformation("Job {JobId}: report and gallery written to {Gallery}", job.JobId, BlobLayout.Gallery(job.JobId));
        return report;
    }
}
