using BatchRender.Training.Dataset;
using BatchRender.Training.Training;
using TorchSharp;
using static TorchSharp.torch;

namespace BatchRender.Training.Tests.Training;

public class SceneAttributeTargetsTests
{
    private static readonly SceneObject RedStarTopLeft = new(Shape.Star, ObjectColour.Red, new GridCell(0, 0), ObjectSize.Large);
    private static readonly SceneObject BlueCircleBottomRight = new(Shape.Circle, ObjectColour.Blue, new GridCell(2, 2), ObjectSize.Small);

    [Fact]
    public void Objects_are_named_by_their_cell_whatever_order_the_scene_lists_them_in()
    {
        var a = SceneAttributeTargets.For(new SceneSpec(ObjectColour.Green, [RedStarTopLeft, BlueCircleBottomRight], RenderStyle.InkWash));
        var b = SceneAttributeTargets.For(new SceneSpec(ObjectColour.Green, [BlueCircleBottomRight, RedStarTopLeft], RenderStyle.InkWash));
        Assert.Equal(a, b);
        Assert.Equal(SceneAttributeTargets.GroupSizes.Count, a.Length);
        Assert.Equal([1 + (long)ObjectColour.Red, 1 + (long)Shape.Star, 1 + (long)ObjectSize.Large], a[0..3]);
        Assert.Equal([1 + (long)ObjectColour.Blue, 1 + (long)Shape.Circle, 1 + (long)ObjectSize.Small], a[24..27]);
        Assert.All(Enumerable.Range(1, 7), cell => Assert.Equal([0L, 0L, 0L], a[(3 * cell)..(3 * cell + 3)]));   // empty cells
        Assert.Equal([(long)ObjectColour.Green, (long)RenderStyle.InkWash, 0L], a[27..]);
        for (int g = 0; g < a.Length; g++) Assert.InRange(a[g], 0, SceneAttributeTargets.GroupSizes[g] - 1);
    }

    [Fact]
    public void A_caption_that_names_no_scene_has_no_targets_and_a_clip_leaves_its_background_out()
    {
        Assert.All(SceneAttributeTargets.For(null), t => Assert.Equal(SceneAttributeTargets.Ignore, t));
        var clip = SceneAttributeTargets.For(new SceneSpec(ObjectColour.Black, [RedStarTopLeft with { Cell = GridCell.Centre }], RenderStyle.Flat, Motion.Up));
        Assert.Equal(SceneAttributeTargets.Ignore, clip[27]);
        Assert.Equal(1 + (long)Motion.Up, clip[29]);
        Assert.Equal(1 + (long)ObjectColour.Red, clip[3 * GridCell.Centre.Index]);
    }

    [Fact]
    public void The_drawn_caption_names_the_scene_unless_it_is_empty_or_only_the_degraded_words()
    {
        var dataset = new DemoDataset(new DemoDatasetOptions { DegradedShare = 0.5, CaptionDropout = 0.2 });
        var random = new Random(5);
        int empty = 0, wordsOnly = 0;
        for (int i = 0; i < 400; i++)
        {
            var example = dataset.GetExample(i);
            var (text, names) = DiffusionStage.Caption(example, dataset.Options, random);
            if (text == "") { Assert.Null(names); empty++; continue; }
            bool degradedOnly = CaptionWords.For(Language.English).Degraded.Concat(CaptionWords.For(Language.Chinese).Degraded).Contains(text);
            if (degradedOnly) { Assert.Null(names); wordsOnly++; }
            else Assert.Same(example.Scene, names);
        }
        Assert.InRange(empty, 40, 120);
        Assert.InRange(wordsOnly, 40, 120);
    }
}

public class SceneAttributeHeadsTests
{
    [Fact]
    public void The_loss_averages_each_group_over_the_rows_that_name_it_and_is_zero_when_none_do()
    {
        using var heads = new SceneAttributeHeads(8, 8);
        var states = randn(3, 5, 8);
        var mask = ones(3, 5, dtype: ScalarType.Int64);
        var none = Enumerable.Range(0, 3).Select(_ => SceneAttributeTargets.For(null)).ToArray();
        Assert.Equal(0f, heads.Loss(states, mask, states, mask, none).item<float>());

        // One scene row among two that name nothing: the loss is that row's alone.
        var scene = SceneAttributeTargets.For(new SceneSpec(ObjectColour.Pink, [new SceneObject(Shape.Square, ObjectColour.Red, new GridCell(1, 2), ObjectSize.Small)], RenderStyle.Flat));
        var mixed = heads.Loss(states, mask, states, mask, [none[0], scene, none[2]]).item<float>();
        var alone = heads.Loss(states[1..2], mask[1..2], states[1..2], mask[1..2], [scene]).item<float>();
        Assert.Equal(alone, mixed, 5);
        Assert.True(alone > 0);
    }

    [Fact]
    public void Padding_does_not_change_the_pooled_states()
    {
        using var heads = new SceneAttributeHeads(4, 4);
        var states = randn(1, 6, 4);
        var target = new[] { SceneAttributeTargets.For(new SceneSpec(ObjectColour.White, [new SceneObject(Shape.Star, ObjectColour.Black, GridCell.Centre, ObjectSize.Large)], RenderStyle.Flat)) };
        var mask = tensor(new long[] { 1, 1, 1, 0, 0, 0 }).reshape(1, 6);
        var changedPadding = states.clone();
        changedPadding[0, 3..] = randn(3, 4) * 10;
        Assert.Equal(heads.Loss(states, mask, states, mask, target).item<float>(),
                     heads.Loss(changedPadding, mask, changedPadding, mask, target).item<float>(), 5);
    }
}
