namespace BatchRender.Core.Storage;

/// <summary>
/// Every blob name the pipeline writes or reads, in one place (DESIGN.md "Blob layout"). Names are relative to their
/// container: outputs and job files to <c>renders</c>, manifests and inpaint inputs to <c>manifests</c>.
/// Job and item ids are validated (no '/', '.', '..' or '_job'), so a name built here never escapes its job.
/// </summary>
public static class BlobLayout
{
    public const string JobFolder = "_job";
    public const string SchedulesFolder = "_schedules";

    public static string JobPrefix(string jobId) => $"{jobId}/";
    public static string Image(string jobId, string itemId) => $"{jobId}/{itemId}.png";
    public static string Sidecar(string jobId, string itemId) => $"{jobId}/{itemId}.json";
    public static string FramesPrefix(string jobId, string itemId) => $"{jobId}/{itemId}/";
    public static string Frame(string jobId, string itemId, int index) => $"{jobId}/{itemId}/frame-{index:D5}.png";
    public static string Preview(string jobId, string itemId) => $"{jobId}/{itemId}.gif";

    public static string Manifest(string jobId) => $"{jobId}/{JobFolder}/manifest.json";
    public static string Errors(string jobId) => $"{jobId}/{JobFolder}/errors.json";
    public static string Report(string jobId) => $"{jobId}/{JobFolder}/report.json";
    public static string Gallery(string jobId) => $"{jobId}/{JobFolder}/index.html";

    /// <summary>Where an invalid schedule's problems go (in <c>renders</c>).</summary>
    public static string ScheduleErrors(string scheduleName) => $"{SchedulesFolder}/{scheduleName}/errors.json";

    /// <summary>The link from the job's gallery (<c>{jobId}/_job/index.html</c>) to one of its blobs.</summary>
    public static string LinkFromGallery(string jobId, string blobName) =>
        blobName.StartsWith(JobPrefix(jobId), StringComparison.Ordinal)
            ? "../" + blobName[JobPrefix(jobId).Length..]
            : throw new ArgumentException($"'{blobName}' is not inside job '{jobId}'.", nameof(blobName));
}
