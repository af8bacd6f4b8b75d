using System.Text.Json;
using BatchRender.Model.Pipelines;
using BatchRender.Training.Dataset;
using BatchRender.Training.Evaluation;
using SixLabors.ImageSharp;
using SixLabors.ImageSharp.PixelFormats;

namespace BatchRender.Training.Tests.Evaluation;

public class EvalRunnerTests
{
    static readonly HeldOutSplit Split = new(20261125);
    static readonly EvalSet Set = EvalSet.Create(Split, new EvalSetOptions { ImageScenes = 10, VideoClips = 3, FramesPerClip = 5, InpaintItems = 2 });

    static EvalRenderer GroundTruth(EvalSet set) => (prompts, _) => prompts.Select(p => new RenderedItem(set.RenderGroundTruth(p))).ToList();

    [Fact]
    public void Eval_prompts_are_held_out_in_both_languages_and_deterministic()
    {
        Assert.Equal(2 * (10 + 3 + 2), Set.Prompts.Count);
        Assert.Equal(Set.Prompts.Count, Set.Prompts.Select(p => p.Id).Distinct().Count());
        foreach (var p in Set.Prompts)
        {
            Assert.True(Split.IsHeldOut(p.Scene) || p.Kind == EvalKind.Inpaint, $"{p.Id} is not held out: {p.Scene}");
            Assert.Equal(p.Language == Language.English ? "blurry, low quality" : "模糊, 低质量", p.NegativePrompt);
        }
        Assert.All(Set.Prompts.Where(p => p.Kind == EvalKind.Inpaint), p => Assert.True(Split.IsHeldOut(p.Inpaint!.Target)));
        foreach (var pair in Set.Prompts.Chunk(2))
        {
            Assert.Equal((Language.English, Language.Chinese), (pair[0].Language, pair[1].Language));
            Assert.Equal(pair[0].Scene, pair[1].Scene);
            Assert.Equal(pair[0].Seed, pair[1].Seed);
        }
        var again = EvalSet.Create(Split, new EvalSetOptions { ImageScenes = 10, VideoClips = 3, FramesPerClip = 5, InpaintItems = 2 });
        Assert.Equal(Set.Prompts.Select(p => (p.Id, p.Prompt, p.Seed)), again.Prompts.Select(p => (p.Id, p.Prompt, p.Seed)));
    }

    [Fact]
    public void Ground_truth_scores_perfectly_and_the_json_has_the_design_shape()
    {
        var runner = new EvalRunner(new AttributeAnalyser(), new EvalRunOptions());
        using var result = runner.Run(Set, [("fp32", GroundTruth(Set)), ("int8-dynamic", GroundTruth(Set))]);
        var r = result.Report;
        Assert.Equal(1.0, r.AnalyserOnGroundTruth);
        Assert.All(r.Images.Values.SelectMany(l => l.Values), s => Assert.Equal(1.0, s.All));
        Assert.Equal(1.0, r.Video.Direction);
        Assert.Equal(1.0, r.Inpaint.Region);
        Assert.True(r.Inpaint.OutsideUnchanged);

        using var json = JsonDocument.Parse(r.ToJson());
        var root = json.RootElement;
        Assert.Equal(["model", "prompts", "images", "video", "inpaint", "analyserOnGroundTruth"], root.EnumerateObject().Select(p => p.Name));
        Assert.Equal("demo", root.GetProperty("model").GetString());
        Assert.Equal(Set.Prompts.Count, root.GetProperty("prompts").GetInt32());
        Assert.Equal(["fp32", "int8-dynamic"], root.GetProperty("images").EnumerateObject().Select(p => p.Name));
        var en = root.GetProperty("images").GetProperty("fp32").GetProperty("en");
        Assert.Equal(["shape", "colour", "position", "size", "background", "style", "all"], en.EnumerateObject().Select(p => p.Name));
        Assert.Equal(["direction", "coherence"], root.GetProperty("video").EnumerateObject().Select(p => p.Name));
        Assert.Equal(["region", "outsideUnchanged"], root.GetProperty("inpaint").EnumerateObject().Select(p => p.Name));
        var parsed = EvalReport.FromJson(r.ToJson());
        Assert.Equal(r.Images["int8-dynamic"]["zh"], parsed.Images["int8-dynamic"]["zh"]);
        Assert.Equal((r.Prompts, r.Inpaint, r.Video.Direction), (parsed.Prompts, parsed.Inpaint, parsed.Video.Direction));

        var html = EvalHtmlReport.Render(result);
        Assert.Contains(Set.Prompts.First(p => p.Language == Language.Chinese).Prompt, html);
        Assert.Contains("data:image/png;base64,", html);
        Assert.DoesNotContain("class=\"bad\"", html);
    }

    [Fact]
    public void A_renderer_that_ignores_the_prompt_scores_low_and_touching_outside_the_mask_is_caught()
    {
        // Always the same picture, and for clips the same frame over and over.
        var fixedScene = new SceneSpec(ObjectColour.Black, [new SceneObject(Shape.Square, ObjectColour.White, new GridCell(1, 1), ObjectSize.Small)], RenderStyle.Flat);
        EvalRenderer ignoring = (prompts, _) => prompts
            .Select(p => new RenderedItem(Enumerable.Range(0, p.Frames).Select(_ => SceneRenderer.Render(fixedScene, 128, 1)).ToList())).ToList();
        var runner = new EvalRunner(new AttributeAnalyser(), new EvalRunOptions());
        using var result = runner.Run(Set, [("fp32", ignoring)]);
        var en = result.Report.Images["fp32"]["en"];
        Assert.True(en.All <= 0.1, $"all: {en.All}");
        Assert.True(en.Colour <= 0.3 && en.Background <= 0.3, $"colour {en.Colour}, background {en.Background}");
        Assert.Equal(0.0, result.Report.Video.Direction);
        Assert.False(result.Report.Inpaint.OutsideUnchanged);
        Assert.Contains("class=\"bad\"", EvalHtmlReport.Render(result));
    }

    [Fact]
    public void Renderer_mistakes_are_clear_errors()
    {
        var small = EvalSet.Create(Split, new EvalSetOptions { ImageScenes = 2, VideoClips = 1, FramesPerClip = 3, InpaintItems = 0 });
        var runner = new EvalRunner(new AttributeAnalyser(), new EvalRunOptions());
        EvalRenderer tooFew = (prompts, _) => prompts.Skip(1).Select(p => new RenderedItem(small.RenderGroundTruth(p))).ToList();
        Assert.Contains("returned", Assert.Throws<InvalidOperationException>(() => runner.Run(small, [("fp32", tooFew)])).Message);
        Assert.Throws<ArgumentException>(() => runner.Run(small, []));
        var strict = new EvalRunner(new AttributeAnalyser(), new EvalRunOptions { MinimumAnalyserAccuracy = 1.01 });
        Assert.Contains("analyser", Assert.Throws<InvalidOperationException>(() => strict.Run(small, [("fp32", GroundTruth(small))])).Message);
    }

    [Fact]
    public void Prompts_map_to_render_requests()
    {
        var video = Set.Prompts.First(p => p.Kind == EvalKind.Video);
        var request = PipelineEvalRenderer.ToRequest(video, 128, new EvalRenderSettings());
        Assert.Equal((video.Prompt, video.NegativePrompt, video.Seed, 128, 128, 20, 5.0), (request.Prompt, request.NegativePrompt, request.Seed, request.Width, request.Height, request.Steps, request.GuidanceScale));
        Assert.Equal(5, request.Video!.Frames);
        Assert.Null(request.Inpaint);
        var inpaint = Set.Prompts.First(p => p.Kind == EvalKind.Inpaint);
        var r2 = PipelineEvalRenderer.ToRequest(inpaint, 128, new EvalRenderSettings());
        Assert.Equal(inpaint.Inpaint!.MaskPng, r2.Inpaint!.Mask);
        using var mask = Image.Load<L8>(r2.Inpaint.Mask);
        var region = inpaint.Inpaint.Region;
        Assert.Equal(255, mask[region.Left, region.Top].PackedValue);
        Assert.Equal(0, mask[(region.Left + 64) % 128, (region.Top + 64) % 128].PackedValue);
    }
}
