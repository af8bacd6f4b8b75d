using BatchRender.Training.Dataset;
using SixLabors.ImageSharp;
using SixLabors.ImageSharp.PixelFormats;

namespace BatchRender.Training.Evaluation;

/// <summary>What a renderer produced for one prompt: one image, or a clip's frames.</summary>
public sealed record RenderedItem(IReadOnlyList<Image<Rgb24>> Frames) : IDisposable
{
    public Image<Rgb24> Image => Frames[0];
    public void Dispose() { foreach (var f in Frames) f.Dispose(); }
}

/// <summary>Renders evaluation prompts (in order, one item per prompt). The real pipeline plugs in through
/// <see cref="PipelineEvalRenderer"/>; tests can plug in the dataset renderer.</summary>
public delegate IReadOnlyList<RenderedItem> EvalRenderer(IReadOnlyList<EvalPrompt> prompts, CancellationToken cancellationToken);

/// <summary>A prompt, what was rendered for it and the analyser's verdict (for the HTML report).</summary>
public sealed record EvalItemResult(EvalPrompt Prompt, RenderedItem Rendered, SceneVerdict Verdict, VideoVerdict? Video,
    bool? RegionCorrect, bool? OutsideUnchanged, float? IndependentChange);

public sealed record EvalResult(EvalReport Report, IReadOnlyDictionary<string, IReadOnlyList<EvalItemResult>> Items) : IDisposable
{
    public void Dispose() { foreach (var list in Items.Values) foreach (var i in list) i.Rendered.Dispose(); }
}

public sealed record EvalRunOptions
{
    public string Model { get; init; } = "demo";
    /// <summary>The analyser must get at least this share of ground-truth renders fully right before it judges models.</summary>
    public double MinimumAnalyserAccuracy { get; init; } = 0.99;
    /// <summary>Seed offset of the second, independent render of each clip (the coherence baseline).</summary>
    public long ReseedOffset { get; init; } = 1_000_003;
}

/// <summary>Runs the evaluation: checks the analyser on ground truth, renders every prompt with each mode's renderer,
/// judges the renders, and assembles the report. Video and inpainting run with the first mode only (the reference).</summary>
public sealed class EvalRunner(AttributeAnalyser analyser, EvalRunOptions options)
{
    /// <summary>Share of the set's ground-truth renders on which every attribute (and a clip's direction) is read right.</summary>
    public double AnalyserOnGroundTruth(EvalSet set)
    {
        int correct = 0;
        foreach (var prompt in set.Prompts)
        {
            var frames = set.RenderGroundTruth(prompt);
            using var item = new RenderedItem(frames);
            var (verdict, video, region, outside) = Judge(prompt, item);
            bool ok = prompt.Kind switch
            {
                // A clip's object travels through the cells: judge its motion, and what it is in the last frame.
                EvalKind.Video => video!.Direction && verdict.Colour && verdict.Shape && verdict.Background && verdict.Style,
                EvalKind.Inpaint => verdict.All && region == true && outside == true,
                _ => verdict.All,
            };
            if (ok) correct++;
        }
        return set.Prompts.Count == 0 ? 1 : correct / (double)set.Prompts.Count;
    }

    public EvalResult Run(EvalSet set, IReadOnlyList<(string Mode, EvalRenderer Renderer)> renderers, CancellationToken cancellationToken = default)
    {
        if (renderers.Count == 0) throw new ArgumentException("no renderer to evaluate", nameof(renderers));
        double groundTruth = AnalyserOnGroundTruth(set);
        if (groundTruth < options.MinimumAnalyserAccuracy)
            throw new InvalidOperationException(
                $"the attribute analyser reads only {groundTruth:P1} of the ground-truth renders right (needs {options.MinimumAnalyserAccuracy:P0}); its verdicts on a model would not mean anything");

        var images = new Dictionary<string, IReadOnlyDictionary<string, AttributeScores>>();
        var items = new Dictionary<string, IReadOnlyList<EvalItemResult>>();
        VideoScores video = new(0, 0);
        InpaintScores inpaint = new(0, true);
        for (int m = 0; m < renderers.Count; m++)
        {
            var (mode, renderer) = renderers[m];
            bool reference = m == 0;
            var prompts = set.Prompts.Where(p => reference || p.Kind == EvalKind.Image).ToList();
            var rendered = Render(renderer, prompts, cancellationToken);
            var reseeded = reference ? Render(renderer, prompts.Where(p => p.Kind == EvalKind.Video)
                .Select(p => p with { Id = p.Id + "-reseeded", Seed = p.Seed + options.ReseedOffset }).ToList(), cancellationToken) : [];

            var results = new List<EvalItemResult>();
            int clip = 0;
            for (int i = 0; i < prompts.Count; i++)
            {
                var (verdict, videoVerdict, region, outside) = Judge(prompts[i], rendered[i]);
                float? independent = null;
                if (prompts[i].Kind == EvalKind.Video)
                {
                    independent = IndependentChange(rendered[i], reseeded[clip]);
                    reseeded[clip++].Dispose();
                }
                results.Add(new EvalItemResult(prompts[i], rendered[i], verdict, videoVerdict, region, outside, independent));
            }
            items[mode] = results;
            images[mode] = Enum.GetValues<Language>().ToDictionary(l => l.Code(), l => AttributeScores.From(
                results.Where(r => r.Prompt.Kind == EvalKind.Image && r.Prompt.Language == l).Select(r => r.Verdict).ToList()));
            if (reference)
            {
                var clips = results.Where(r => r.Video is not null).ToList();
                video = new VideoScores(
                    Share(clips, r => r.Video!.Direction),
                    Share(clips, r => r.Video!.MeanFrameChange < 0.5f * r.IndependentChange!.Value));
                var repaints = results.Where(r => r.RegionCorrect is not null).ToList();
                inpaint = new InpaintScores(Share(repaints, r => r.RegionCorrect!.Value), repaints.All(r => r.OutsideUnchanged!.Value));
            }
        }
        return new EvalResult(new EvalReport(options.Model, set.Prompts.Count, images, video, inpaint, groundTruth), items);
    }

    (SceneVerdict Verdict, VideoVerdict? Video, bool? Region, bool? Outside) Judge(EvalPrompt prompt, RenderedItem item)
    {
        switch (prompt.Kind)
        {
            case EvalKind.Video:
                var video = analyser.AnalyseVideo(item.Frames, prompt.Scene);
                // The last frame is the finished scene (a bloom fully open, a grown object at full size).
                return (video.Frames[^1], video, null, null);
            case EvalKind.Inpaint:
                var verdict = analyser.Analyse(item.Image, prompt.Scene);
                var target = verdict.Objects.Single(o => o.Expected == prompt.Inpaint!.Target);
                bool region = target.Colour && target.Shape && target.Position;
                return (verdict, null, region, OutsideUnchanged(prompt.Inpaint!, item.Image));
            default:
                return (analyser.Analyse(item.Image, prompt.Scene), null, null, null);
        }
    }

    static bool OutsideUnchanged(InpaintInput inpaint, Image<Rgb24> output)
    {
        using var input = Image.Load<Rgb24>(inpaint.ImagePng);
        using var mask = Image.Load<L8>(inpaint.MaskPng);
        if (input.Width != output.Width || input.Height != output.Height) return false;
        for (int y = 0; y < input.Height; y++)
            for (int x = 0; x < input.Width; x++)
                if (mask[x, y].PackedValue < 128 && !input[x, y].Equals(output[x, y])) return false;
        return true;
    }

    static float IndependentChange(RenderedItem a, RenderedItem b)
    {
        int n = Math.Min(a.Frames.Count, b.Frames.Count);
        float sum = 0;
        for (int i = 0; i < n; i++) sum += AttributeAnalyser.MeanAbsoluteChange(a.Frames[i], b.Frames[i]);
        return n == 0 ? 0 : sum / n;
    }

    static IReadOnlyList<RenderedItem> Render(EvalRenderer renderer, IReadOnlyList<EvalPrompt> prompts, CancellationToken cancellationToken)
    {
        if (prompts.Count == 0) return [];
        var rendered = renderer(prompts, cancellationToken);
        if (rendered.Count != prompts.Count)
            throw new InvalidOperationException($"the renderer returned {rendered.Count} items for {prompts.Count} prompts");
        for (int i = 0; i < prompts.Count; i++)
            if (rendered[i].Frames.Count != prompts[i].Frames)
                throw new InvalidOperationException($"{prompts[i].Id}: the renderer returned {rendered[i].Frames.Count} frames, {prompts[i].Frames} expected");
        return rendered;
    }

    static double Share<T>(IReadOnlyCollection<T> items, Func<T, bool> ok) => items.Count == 0 ? 0 : items.Count(ok) / (double)items.Count;
}
