using BatchRender.Training.Dataset;
using SixLabors.ImageSharp.PixelFormats;

namespace BatchRender.Training.Tests.Dataset;

public class DemoDatasetTests
{
    static readonly DemoDataset Dataset = new(new DemoDatasetOptions());

    [Fact]
    public void Examples_are_a_pure_function_of_seed_and_index()
    {
        var other = new DemoDataset(new DemoDatasetOptions());
        for (long i = 0; i < 40; i++)
        {
            var a = Dataset.GetExample(i);
            var b = other.GetExample(i);
            Assert.Equal(a, b);
            using var imageA = Dataset.Render(a);
            using var imageB = other.Render(b);
            Assert.True(SamePixels(imageA, imageB), $"example {i} renders differently");
        }
        // A different seed gives a different stream.
        var reseeded = new DemoDataset(new DemoDatasetOptions { Seed = 99 });
        Assert.True(Enumerable.Range(0, 20).Count(i => reseeded.GetExample(i).Scene != Dataset.GetExample(i).Scene) >= 15);
    }

    [Fact]
    public void Training_stream_never_shows_a_held_out_combination_and_has_the_requested_mix()
    {
        var examples = Enumerable.Range(0, 4000).Select(i => Dataset.GetExample(i)).ToList();
        Assert.DoesNotContain(examples, e => Dataset.Split.IsHeldOut(e.Scene));
        foreach (var e in examples)
        {
            e.Scene.Validate();
            Assert.Equal(e.Scene.IsVideo, e.FramePhase is not null);
            Assert.True(e.FramePhase is null or >= 0f and <= 1f);
        }
        double Share(Func<TrainingExample, bool> f) => examples.Count(f) / (double)examples.Count;
        Assert.InRange(Share(e => e.Scene.IsVideo), 0.16, 0.24);
        Assert.InRange(Share(e => e.Scene.Style == RenderStyle.InkWash), 0.35, 0.45);
        Assert.InRange(Share(e => e.Language == Language.Chinese), 0.45, 0.55);
        Assert.InRange(Share(e => e.Caption == ""), 0.07, 0.13);
        Assert.InRange(Share(e => e.Degraded), 0.03, 0.07);
        // Every shape, colour, cell and motion occurs in training.
        var objects = examples.SelectMany(e => e.Scene.Objects).ToList();
        Assert.Equal(Palette.Shapes.Count, objects.Select(o => o.Shape).Distinct().Count());
        Assert.Equal(Palette.Colours.Count, objects.Select(o => o.Colour).Distinct().Count());
        Assert.Equal(9, examples.Where(e => !e.Scene.IsVideo).SelectMany(e => e.Scene.Objects).Select(o => o.Cell).Distinct().Count());
        Assert.Equal(Enum.GetValues<Motion>().Length, examples.Where(e => e.Scene.IsVideo).Select(e => e.Scene.Motion).Distinct().Count());
        // Degraded examples say so in their caption (unless dropped), in their language.
        foreach (var e in examples.Where(e => e.Degraded && e.Caption != ""))
            Assert.Contains(CaptionWords.For(e.Language).Degraded, d => e.Caption.Contains(d));
    }

    [Fact]
    public void Held_out_split_is_deterministic_and_keeps_every_pair_in_training()
    {
        var a = new HeldOutSplit(5);
        var b = new HeldOutSplit(5);
        var c = new HeldOutSplit(6);
        Assert.Equal(a.HeldOutStills.OrderBy(t => t.ToString()), b.HeldOutStills.OrderBy(t => t.ToString()));
        Assert.NotEqual(a.HeldOutStills.OrderBy(t => t.ToString()), c.HeldOutStills.OrderBy(t => t.ToString()));
        Assert.InRange(a.HeldOutStills.Count, 35, 45); // 10% of 9 x 5 x 9
        Assert.NotEmpty(a.HeldOutClips);
        var all = from colour in Palette.Colours from shape in Palette.Shapes from cell in GridCell.All select (colour, shape, cell);
        var trained = all.Where(t => !a.HeldOutStills.Contains(t)).ToList();
        foreach (var (colour, shape, cell) in a.HeldOutStills)
        {
            Assert.Contains(trained, t => t.colour == colour && t.shape == shape);
            Assert.Contains(trained, t => t.colour == colour && t.cell == cell);
            Assert.Contains(trained, t => t.shape == shape && t.cell == cell);
        }
    }

    [Fact]
    public void Scene_invariants_are_checked_with_the_reason()
    {
        var red = new SceneObject(Shape.Star, ObjectColour.Red, new GridCell(0, 0), ObjectSize.Large);
        Assert.Contains("background", Assert.Throws<ArgumentException>(() => new SceneSpec(ObjectColour.Red, [red], RenderStyle.Flat).Validate()).Message);
        Assert.Contains("different cells", Assert.Throws<ArgumentException>(() =>
            new SceneSpec(ObjectColour.Blue, [red, red with { Colour = ObjectColour.Green }], RenderStyle.Flat).Validate()).Message);
        Assert.Contains("only flowers", Assert.Throws<ArgumentException>(() =>
            new SceneSpec(ObjectColour.Blue, [red with { Cell = GridCell.Centre }], RenderStyle.Flat, Motion.Bloom).Validate()).Message);
        Assert.Throws<ArgumentOutOfRangeException>(() => new DemoDataset(new DemoDatasetOptions { ImageSize = 100 }));
        Assert.Throws<ArgumentOutOfRangeException>(() => new DemoDataset(new DemoDatasetOptions { VideoShare = 1.5 }));
    }

    [Fact]
    public void Renders_the_scene_colours_where_the_layout_puts_them()
    {
        var scene = new SceneSpec(ObjectColour.Blue, [new SceneObject(Shape.Square, ObjectColour.Red, new GridCell(2, 0), ObjectSize.Large)], RenderStyle.Flat);
        using var image = SceneRenderer.Render(scene, 128, 3);
        var placed = SceneLayout.Place(scene, 128, 128, 3).Single();
        Assert.Equal(new Rgb24(215, 35, 35), image[(int)placed.CentreX, (int)placed.CentreY]);
        Assert.Equal(new Rgb24(35, 80, 210), image[120, 5]);
        Assert.InRange(placed.CentreX, 128 / 6f - 3, 128 / 6f + 3);
        Assert.InRange(placed.CentreY, 128 * 5 / 6f - 3, 128 * 5 / 6f + 3);

        // Channel-first floats in [-1, 1], red plane first.
        var chw = new float[3 * 128 * 128];
        var example = Dataset.GetExample(3);
        Dataset.RenderChw(example, chw);
        Assert.All(chw, v => Assert.InRange(v, -1f, 1f));
        using var rendered = Dataset.Render(example);
        Assert.Equal(rendered[7, 5].G / 127.5f - 1f, chw[128 * 128 + 5 * 128 + 7], 5);
    }

    [Fact]
    public void Clip_frames_move_the_object_along_its_path_and_share_texture()
    {
        var scene = new SceneSpec(ObjectColour.White, [new SceneObject(Shape.Circle, ObjectColour.Black, GridCell.Centre, ObjectSize.Small)], RenderStyle.InkWash, Motion.LeftToRight);
        var xs = Enumerable.Range(0, 5).Select(f => SceneLayout.Place(scene, 128, 128, 11, f / 4f).Single().CentreX).ToList();
        Assert.Equal(xs.OrderBy(x => x), xs);
        Assert.InRange(xs[0], 128 * 0.2f - 1, 128 * 0.2f + 1);
        Assert.InRange(xs[^1], 128 * 0.8f - 1, 128 * 0.8f + 1);
        var grow = scene with { Motion = Motion.Grow, Objects = [scene.Objects[0] with { Size = ObjectSize.Large }] };
        Assert.True(SceneLayout.Place(grow, 128, 128, 1, 0f).Single().Radius < SceneLayout.Place(grow, 128, 128, 1, 1f).Single().Radius / 2);
        // The background texture of an ink-wash clip is the same in every frame (only the object moves).
        using var first = SceneRenderer.Render(scene, 128, 11, 0f);
        using var last = SceneRenderer.Render(scene, 128, 11, 1f);
        Assert.Equal(first[64, 5], last[64, 5]);
    }

    internal static bool SamePixels(SixLabors.ImageSharp.Image<Rgb24> a, SixLabors.ImageSharp.Image<Rgb24> b)
    {
        if (a.Width != b.Width || a.Height != b.Height) return false;
        for (int y = 0; y < a.Height; y++)
            for (int x = 0; x < a.Width; x++)
                if (!a[x, y].Equals(b[x, y])) return false;
        return true;
    }
}
