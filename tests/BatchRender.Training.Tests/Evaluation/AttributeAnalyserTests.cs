using System.Collections.Concurrent;
using BatchRender.Training.Dataset;
using BatchRender.Training.Evaluation;
using SixLabors.ImageSharp;
using SixLabors.ImageSharp.PixelFormats;
using Xunit.Abstractions;

namespace BatchRender.Training.Tests.Evaluation;

/// <summary>The analyser is a measuring instrument: these tests check it on exact data (ground-truth renders of the
/// held-out evaluation scenes) and on the same renders blurred and noisy, as a small diffusion model's output is.</summary>
public class AttributeAnalyserTests(ITestOutputHelper output)
{
    static readonly string[] Attributes = ["shape", "colour", "position", "size", "background", "style", "all"];

    // Held-out scenes (the ones evaluation asks for), one or two objects, both styles, each with its own seed.
    static IEnumerable<(SceneSpec Scene, int Seed)> Scenes(int count, int seed)
    {
        var set = EvalSet.Create(new HeldOutSplit(seed), new EvalSetOptions
        {
            Seed = seed, ImageScenes = count, VideoClips = 0, InpaintItems = 0, TwoObjectShare = 0.35,
        });
        return set.Prompts.Where(p => p.Language == Language.English).Select(p => (p.Scene, (int)p.Seed));
    }

    Dictionary<string, double> Accuracy(IEnumerable<(SceneSpec Scene, int Seed)> scenes, float blur, float noise)
    {
        var analyser = new AttributeAnalyser();
        var verdicts = new ConcurrentBag<SceneVerdict>();
        Parallel.ForEach(scenes, new ParallelOptions { MaxDegreeOfParallelism = 2 }, s =>
        {
            using var image = SceneRenderer.Render(s.Scene, 128, s.Seed);
            if (blur > 0 || noise > 0) ImageDegradation.Degrade(image, blur, noise, s.Seed);
            verdicts.Add(analyser.Analyse(image, s.Scene));
        });
        var accuracy = Attributes.ToDictionary(a => a, a => verdicts.Count(v => v.ByAttribute[a]) / (double)verdicts.Count);
        output.WriteLine($"blur {blur}, noise {noise}, {verdicts.Count} images: " + string.Join(", ", accuracy.Select(kv => $"{kv.Key} {kv.Value:P1}")));
        foreach (var v in verdicts.Where(v => !v.All).Take(5))
            output.WriteLine($"  wrong: {v.Expected} -> bg {v.DetectedBackground}, {v.DetectedStyle}, {string.Join("; ", v.Objects.Select(o => o.Found?.ToString() ?? "missing"))}");
        return accuracy;
    }

    [Fact]
    public void Reads_every_attribute_of_ground_truth_renders_at_least_99_percent()
    {
        var accuracy = Accuracy(Scenes(300, 11), 0, 0);
        Assert.All(Attributes, a => Assert.True(accuracy[a] >= 0.99, $"{a}: {accuracy[a]:P1}"));
    }

    [Theory]
    [InlineData(1.0f, 0f)]
    [InlineData(0f, 10f)]
    [InlineData(1.2f, 8f)]
    [InlineData(2.0f, 0f)]
    public void Survives_blur_and_noise_at_least_95_percent(float blur, float noise)
    {
        var accuracy = Accuracy(Scenes(100, 12), blur, noise);
        Assert.All(Attributes, a => Assert.True(accuracy[a] >= 0.95, $"{a}: {accuracy[a]:P1}"));
    }

    [Fact]
    public void Wrong_attributes_are_reported_wrong()
    {
        var analyser = new AttributeAnalyser();
        var scene = new SceneSpec(ObjectColour.Blue, [new SceneObject(Shape.Star, ObjectColour.Red, new GridCell(0, 0), ObjectSize.Large)], RenderStyle.Flat);
        using var image = SceneRenderer.Render(scene, 128, 1);
        Assert.True(analyser.Analyse(image, scene).All);
        var o = scene.Objects[0];
        Assert.False(analyser.Analyse(image, scene with { Objects = [o with { Colour = ObjectColour.Orange }] }).Colour);
        Assert.False(analyser.Analyse(image, scene with { Objects = [o with { Shape = Shape.Flower }] }).Shape);
        Assert.False(analyser.Analyse(image, scene with { Objects = [o with { Cell = new GridCell(0, 1) }] }).Position);
        Assert.False(analyser.Analyse(image, scene with { Objects = [o with { Size = ObjectSize.Small }] }).Size);
        Assert.False(analyser.Analyse(image, scene with { Background = ObjectColour.Purple }).Background);
        Assert.False(analyser.Analyse(image, scene with { Style = RenderStyle.InkWash }).Style);
        // An object that is not there is missing, and fails "all".
        var two = scene with { Objects = [o, new SceneObject(Shape.Circle, ObjectColour.Yellow, new GridCell(2, 2), ObjectSize.Small)] };
        var verdict = analyser.Analyse(image, two);
        Assert.Null(verdict.Objects[1].Found);
        Assert.False(verdict.All);
        // An extra object fails "all" too.
        using var withExtra = SceneRenderer.Render(two, 128, 1);
        Assert.Equal(1, analyser.Analyse(withExtra, scene).ExtraObjects);
        Assert.False(analyser.Analyse(withExtra, scene).All);
        // A plain background has no object at all.
        using var empty = new Image<Rgb24>(128, 128, new Rgb24(35, 80, 210));
        Assert.False(analyser.Analyse(empty, scene).All);
    }

    [Theory]
    [InlineData(RenderStyle.Flat, 0f, 0f)]
    [InlineData(RenderStyle.InkWash, 0f, 0f)]
    [InlineData(RenderStyle.Flat, 1.2f, 8f)]
    [InlineData(RenderStyle.InkWash, 1.2f, 8f)]
    public void Reads_the_direction_of_motion_of_clips(RenderStyle style, float blur, float noise)
    {
        var analyser = new AttributeAnalyser();
        var random = new Random(21);
        int correct = 0, total = 0;
        foreach (var motion in Enum.GetValues<Motion>())
            for (int k = 0; k < 2; k++)
            {
                var shape = motion == Motion.Bloom ? Shape.Flower : Palette.Shapes[random.Next(Palette.Shapes.Count)];
                var colours = Palette.Colours.OrderBy(_ => random.Next()).ToArray();
                var size = motion is Motion.Grow or Motion.Bloom || k == 0 ? ObjectSize.Large : ObjectSize.Small;
                var scene = new SceneSpec(colours[1], [new SceneObject(shape, colours[0], GridCell.Centre, size)], style, motion).Validate();
                var frames = Enumerable.Range(0, 6).Select(f => SceneRenderer.Render(scene, 128, k, f / 5f)).ToList();
                foreach (var f in frames) if (blur > 0) ImageDegradation.Degrade(f, blur, noise, k);
                var verdict = analyser.AnalyseVideo(frames, scene);
                total++;
                if (verdict.Direction) correct++;
                else output.WriteLine($"{scene}: saw {verdict.Observed} (dx {verdict.DisplacementX:F2}, dy {verdict.DisplacementY:F2}, area x{verdict.AreaRatio:F2})");
                foreach (var f in frames) f.Dispose();
            }
        Assert.Equal(total, correct);
    }

    [Fact]
    public void A_still_clip_has_no_motion_and_frame_change_measures_coherence()
    {
        var analyser = new AttributeAnalyser();
        var scene = new SceneSpec(ObjectColour.White, [new SceneObject(Shape.Square, ObjectColour.Green, GridCell.Centre, ObjectSize.Large)], RenderStyle.Flat, Motion.LeftToRight);
        var still = Enumerable.Range(0, 6).Select(_ => SceneRenderer.Render(scene, 128, 1, 0.5f)).ToList();
        var verdict = analyser.AnalyseVideo(still, scene);
        Assert.Equal(ObservedMotion.None, verdict.Observed);
        Assert.False(verdict.Direction);
        Assert.Equal(0f, verdict.MeanFrameChange);

        var moving = Enumerable.Range(0, 6).Select(f => SceneRenderer.Render(scene, 128, 1, f / 5f)).ToList();
        using var other = SceneRenderer.Render(scene with { Background = ObjectColour.Black, Motion = null, Objects = [scene.Objects[0] with { Cell = new GridCell(2, 2) }] }, 128, 2);
        float consecutive = analyser.AnalyseVideo(moving, scene).MeanFrameChange;
        Assert.InRange(consecutive, 0.001f, AttributeAnalyser.MeanAbsoluteChange(moving[0], other) / 4);
        foreach (var f in still.Concat(moving)) f.Dispose();
    }
}
