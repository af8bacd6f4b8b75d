using System.Net;
using System.Text;
using SixLabors.ImageSharp;
using SixLabors.ImageSharp.PixelFormats;

namespace BatchRender.Training.Evaluation;

/// <summary>A self-contained HTML page of an evaluation: the scores, then per mode every prompt with its render(s)
/// (embedded as PNG data URIs), the expected attributes and the analyser's verdict on each.</summary>
public static class EvalHtmlReport
{
    public static void Write(EvalResult result, string path)
    {
        var temp = path + ".tmp";
        File.WriteAllText(temp, Render(result), new UTF8Encoding(false));
        File.Move(temp, path, overwrite: true);
    }

    public static string Render(EvalResult result)
    {
        var r = result.Report;
        var html = new StringBuilder();
        html.Append($"""
            <!doctype html>
            <html lang="en"><head><meta charset="utf-8"><title>Evaluation of {E(r.Model)}</title>
            <style>
            body {"{"} font-family: system-ui, sans-serif; margin: 2em; color: #222 {"}"}
            table {"{"} border-collapse: collapse; margin: 1em 0 {"}"}
            td, th {"{"} border: 1px solid #ccc; padding: 4px 8px; vertical-align: top {"}"}
            img {"{"} image-rendering: pixelated; width: 128px; height: 128px {"}"}
            img.frame {"{"} width: 64px; height: 64px {"}"}
            .ok {"{"} color: #087f23 {"}"} .bad {"{"} color: #c62828; font-weight: bold {"}"}
            .prompt {"{"} font-size: 1.05em; max-width: 28em {"}"}
            </style></head><body>
            <h1>Evaluation of <code>{E(r.Model)}</code></h1>
            <p>{r.Prompts} prompts; the analyser reads {r.AnalyserOnGroundTruth:P1} of the ground-truth renders right.
            Video: direction {r.Video.Direction:P0}, coherent {r.Video.Coherence:P0}.
            Inpainting: region {r.Inpaint.Region:P0}, outside the mask unchanged: {(r.Inpaint.OutsideUnchanged ? "yes" : "no")}.</p>
            <table><tr><th>mode</th><th>language</th><th>shape</th><th>colour</th><th>position</th><th>size</th><th>background</th><th>style</th><th>all</th></tr>

            """);
        foreach (var (mode, languages) in r.Images)
            foreach (var (language, s) in languages)
                html.Append($"<tr><td>{E(mode)}</td><td>{E(language)}</td><td>{s.Shape:P1}</td><td>{s.Colour:P1}</td><td>{s.Position:P1}</td><td>{s.Size:P1}</td><td>{s.Background:P1}</td><td>{s.Style:P1}</td><td><b>{s.All:P1}</b></td></tr>\n");
        html.Append("</table>\n");

        foreach (var (mode, items) in result.Items)
        {
            html.Append($"<h2>{E(mode)}</h2>\n<table><tr><th>render</th><th>prompt</th><th>expected</th><th>verdict</th></tr>\n");
            foreach (var item in items)
            {
                html.Append("<tr><td>");
                if (item.Prompt.Kind == EvalKind.Video)
                    foreach (var f in item.Rendered.Frames) html.Append($"<img class=\"frame\" src=\"{DataUri(f)}\">");
                else
                {
                    if (item.Prompt.Inpaint is { } inpaint)
                        html.Append($"<img src=\"data:image/png;base64,{Convert.ToBase64String(inpaint.ImagePng)}\" title=\"input\"> ");
                    html.Append($"<img src=\"{DataUri(item.Rendered.Image)}\">");
                }
                html.Append($"</td><td class=\"prompt\">{E(item.Prompt.Prompt)}<br><small>{E(item.Prompt.Id)} · seed {item.Prompt.Seed} · negative: {E(item.Prompt.NegativePrompt)}</small></td>");
                html.Append($"<td>{E(item.Prompt.Scene.ToString())}</td><td>");
                // A clip's object passes through several cells and grows: its last frame is judged on what it is.
                var judged = item.Prompt.Kind == EvalKind.Video
                    ? item.Verdict.ByAttribute.Where(a => a.Key is "colour" or "shape" or "background" or "style")
                    : item.Verdict.ByAttribute;
                foreach (var (attribute, ok) in judged)
                    html.Append($"<span class=\"{(ok ? "ok" : "bad")}\">{(ok ? "✓" : "✗")} {attribute}</span> ");
                html.Append($"<br><small>seen: background {E(item.Verdict.DetectedBackground.ToString().ToLowerInvariant())}, {E(item.Verdict.DetectedStyle.ToString().ToLowerInvariant())}; ");
                html.Append(E(string.Join("; ", item.Verdict.Objects.Select(o => o.Found is { } f
                    ? $"{f.Size} {f.Colour} {f.Shape} @ {f.Cell}".ToLowerInvariant() : "missing"))));
                if (item.Verdict.ExtraObjects > 0) html.Append($"; {item.Verdict.ExtraObjects} extra object(s)");
                html.Append("</small>");
                if (item.Video is { } v)
                    html.Append($"<br><span class=\"{(v.Direction ? "ok" : "bad")}\">motion: {v.Observed}</span> <small>(dx {v.DisplacementX:F2}, dy {v.DisplacementY:F2}, area ×{v.AreaRatio:F1}; frame change {v.MeanFrameChange:F3} vs independent {item.IndependentChange:F3})</small>");
                if (item.RegionCorrect is { } region)
                    html.Append($"<br><span class=\"{(region ? "ok" : "bad")}\">region</span> <span class=\"{(item.OutsideUnchanged == true ? "ok" : "bad")}\">outside unchanged</span>");
                html.Append("</td></tr>\n");
            }
            html.Append("</table>\n");
        }
        html.Append("</body></html>\n");
        return html.ToString();
    }

    static string DataUri(Image<Rgb24> image)
    {
        using var stream = new MemoryStream();
        image.SaveAsPng(stream);
        return "data:image/png;base64," + Convert.ToBase64String(stream.ToArray());
    }

    static string E(string text) => WebUtility.HtmlEncode(text);
}
