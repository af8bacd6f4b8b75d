using System.Text.Json.Serialization;
using BatchRender.Core.State;
using BatchRender.Core.Storage;

namespace BatchRender.Core.Reports;

/// <summary><c>renders/{jobId}/_job/report.json</c>: the job and every item as they ended.</summary>
public sealed record JobReport(
    [property: JsonPropertyName("jobId")] string JobId,
    [property: JsonPropertyName("status")] string Status,
    [property: JsonPropertyName("sourceManifest")] string SourceManifest,
    [property: JsonPropertyName("createdAt")] DateTimeOffset CreatedAt,
    [property: JsonPropertyName("startedAt")] DateTimeOffset? StartedAt,
    [property: JsonPropertyName("finishedAt")] DateTimeOffset? FinishedAt,
    [property: JsonPropertyName("counts")] ItemCounts Counts,
    [property: JsonPropertyName("warnings")] IReadOnlyList<string> Warnings,
    [property: JsonPropertyName("items")] IReadOnlyList<JobReportItem> Items);

public sealed record JobReportItem(
    [property: JsonPropertyName("itemId")] string ItemId,
    [property: JsonPropertyName("state")] string State,
    [property: JsonPropertyName("kind")] string Kind,
    [property: JsonPropertyName("prompt")] string Prompt,
    [property: JsonPropertyName("seed")] long Seed,
    [property: JsonPropertyName("width")] int Width,
    [property: JsonPropertyName("height")] int Height,
    [property: JsonPropertyName("attempts")] int Attempts,
    [property: JsonPropertyName("error")] string? Error,
    [property: JsonPropertyName("outputs")] IReadOnlyList<string> Outputs,
    [property: JsonPropertyName("preview")] string? Preview,
    [property: JsonPropertyName("workerId")] string? WorkerId,
    [property: JsonPropertyName("startedAt")] DateTimeOffset? StartedAt,
    [property: JsonPropertyName("finishedAt")] DateTimeOffset? FinishedAt,
    [property: JsonPropertyName("timingsMs")] IReadOnlyDictionary<string, double> TimingsMs)
{
    public static JobReportItem From(ItemRecord item) => new(
        item.ItemId, item.State, item.Kind, item.Prompt, item.Seed, item.Width, item.Height, item.Attempts,
        item.State == ItemStates.Done ? null : item.LastError,
        item.Outputs, PreviewOf(item), item.WorkerId, item.StartedAt, item.FinishedAt, item.TimingsMs);

    /// <summary>The blob a gallery shows for a done item: the image, or the video's animated preview.</summary>
    private static string? PreviewOf(ItemRecord item)
    {
        if (item.State != ItemStates.Done) return null;
        var wanted = item.Kind == Messages.RenderTaskKinds.Video
            ? BlobLayout.Preview(item.JobId, item.ItemId)
            : BlobLayout.Image(item.JobId, item.ItemId);
        return item.Outputs.Contains(wanted) ? wanted
            : item.Outputs.FirstOrDefault(o => o.EndsWith(".gif", StringComparison.Ordinal) || o.EndsWith(".png", StringComparison.Ordinal));
    }
}
