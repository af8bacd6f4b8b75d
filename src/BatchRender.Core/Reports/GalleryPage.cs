using System.Globalization;
using System.Net;
using System.Text;
using BatchRender.Core.State;
using BatchRender.Core.Storage;

namespace BatchRender.Core.Reports;

/// <summary>
/// <c>renders/{jobId}/_job/index.html</c>: one self-contained page (inline CSS, no scripts, nothing fetched from the
/// web) a person opens in a browser, from Blob Storage or from a downloaded folder: a card per item with its picture
/// (relative links to the PNGs, a video's animated preview), prompt, seed, timings, or its error.
/// Every piece of text from a manifest is HTML-escaped.
/// </summary>
public static class GalleryPage
{
    public static string Render(JobReport report)
    {
        var html = new StringBuilder();
        var title = $"BatchRender job {report.JobId}";
        html.Append($$"""
            <!DOCTYPE html>
            <html lang="en">
            <head>
            <meta charset="utf-8">
            <meta name="viewport" content="width=device-width, initial-scale=1">
            <title>{{E(title)}}</title>
            <style>
            body { font-family: system-ui, sans-serif; margin: 1.5rem; background: #f6f6f4; color: #222; }
            h1 { font-size: 1.4rem; margin: 0 0 .3rem; }
            .summary { color: #555; margin-bottom: 1.2rem; }
            .grid { display: grid; grid-template-columns: repeat(auto-fill, minmax(220px, 1fr)); gap: 1rem; }
            .card { background: #fff; border-radius: 8px; padding: .7rem; box-shadow: 0 1px 3px #0002; }
            .card img { width: 100%; height: auto; image-rendering: pixelated; border-radius: 4px; background: #ddd; }
            .id { font-weight: 600; } .state { float: right; font-size: .8rem; padding: 0 .4rem; border-radius: 4px; background: #e4e4e4; }
            .state.done { background: #d5f0d5; } .state.failed, .state.dead-lettered { background: #f6d3d3; }
            .prompt { margin: .4rem 0; } .meta { font-size: .8rem; color: #666; }
            .error { color: #a00; white-space: pre-wrap; font-size: .85rem; }
            </style>
            </head>
            <body>
            <h1>{{E(title)}}</h1>
            <div class="summary">{{E(Summary(report))}}</div>
            """);
        if (report.Warnings.Count > 0)
        {
            html.Append("<ul class=\"warnings\">");
            foreach (var warning in report.Warnings) html.Append($"<li>{E(warning)}</li>");
            html.Append("</ul>\n");
        }
        html.Append("<div class=\"grid\">\n");
        foreach (var item in report.Items)
        {
            html.Append($"<figure class=\"card\" id=\"{E(item.ItemId)}\">\n");
            if (item.Preview is { } preview)
            {
                var alt = item.Kind == Messages.RenderTaskKinds.Video ? $"animated preview of {item.ItemId}" : item.ItemId;
                html.Append($"<a href=\"{Link(report.JobId, preview)}\"><img src=\"{Link(report.JobId, preview)}\" alt=\"{E(alt)}\" loading=\"lazy\" width=\"{item.Width}\" height=\"{item.Height}\"></a>\n");
            }
            html.Append($"<figcaption><span class=\"id\">{E(item.ItemId)}</span> <span class=\"state {E(item.State)}\">{E(item.State)}</span>\n");
            html.Append($"<div class=\"prompt\">{E(item.Prompt)}</div>\n");
            html.Append($"<div class=\"meta\">{E(Meta(item))}</div>\n");
            if (item.Error is { } error) html.Append($"<div class=\"error\">{E(error)}</div>\n");
            html.Append("</figcaption></figure>\n");
        }
        html.Append("</div>\n</body>\n</html>\n");
        return html.ToString();
    }

    private static string Summary(JobReport report)
    {
        var c = report.Counts;
        var parts = new List<string> { $"{report.Status}", $"{c.Done} of {c.Total} done" };
        if (c.Failed > 0) parts.Add($"{c.Failed} failed");
        if (c.DeadLettered > 0) parts.Add($"{c.DeadLettered} dead-lettered");
        if (c.Cancelled > 0) parts.Add($"{c.Cancelled} cancelled");
        if (report.StartedAt is { } started && report.FinishedAt is { } finished)
            parts.Add($"{(finished - started).TotalSeconds.ToString("0.0", CultureInfo.InvariantCulture)} s");
        parts.Add($"from {report.SourceManifest}");
        return string.Join(" · ", parts);
    }

    private static string Meta(JobReportItem item)
    {
        var parts = new List<string> { item.Kind, $"{item.Width}×{item.Height}", $"seed {item.Seed}" };
        foreach (var (stage, ms) in item.TimingsMs)
            parts.Add($"{stage} {(ms / 1000).ToString("0.00", CultureInfo.InvariantCulture)} s");
        if (item.Attempts > 1) parts.Add($"{item.Attempts} attempts");
        return string.Join(" · ", parts);
    }

    private static string E(string text) => WebUtility.HtmlEncode(text);

    /// <summary>A relative URL from <c>_job/index.html</c>, each path segment escaped.</summary>
    private static string Link(string jobId, string blobName) =>
        E(string.Join('/', BlobLayout.LinkFromGallery(jobId, blobName).Split('/').Select(s => s == ".." ? s : Uri.EscapeDataString(s))));
}
