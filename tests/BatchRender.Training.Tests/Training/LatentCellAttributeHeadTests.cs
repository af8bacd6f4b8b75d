using BatchRender.Model.Configuration;
using BatchRender.Model.Transformers;
using BatchRender.Training.Dataset;
using BatchRender.Training.Training;
using static TorchSharp.torch;

namespace BatchRender.Training.Tests.Training;

public class LatentCellAttributeHeadTests
{
    private static readonly DemoDataset Dataset = new(new DemoDatasetOptions { DegradedShare = 0 });

    [Fact]
    public void Cell_targets_name_the_colour_and_shape_the_rendered_image_shows_at_each_cell_centre()
    {
        var scene = new SceneSpec(ObjectColour.Blue,
            [new SceneObject(Shape.Star, ObjectColour.Red, new GridCell(0, 0), ObjectSize.Large),
             new SceneObject(Shape.Square, ObjectColour.Yellow, new GridCell(0, 2), ObjectSize.Small)], RenderStyle.Flat);
        var example = new TrainingExample(0, scene, Language.English, "", null, false, 17);
        var (colour, shape) = LatentCellTargets.For(example, 128, 16);
        using var image = Dataset.Render(example);

        var wrong = new List<string>();
        for (int cell = 0; cell < 256; cell++)
        {
            // The pixels around the cell's centre show the named colour (the centre lies between four pixels; a cell
            // centred on an object's edge may see both sides, so one of the four must match).
            var expected = colour[cell] == 0 ? Palette.Rgb(ObjectColour.Blue) : Palette.Rgb((ObjectColour)(colour[cell] - 1));
            int x = cell % 16 * 8 + 3, y = cell / 16 * 8 + 3;
            bool seen = new[] { image[x, y], image[x + 1, y], image[x, y + 1], image[x + 1, y + 1] }
                .Any(p => Math.Abs(p.R - expected.R) + Math.Abs(p.G - expected.G) + Math.Abs(p.B - expected.B) < 100);
            if (!seen) wrong.Add($"cell {cell}: class {colour[cell]}, pixel {image[x + 1, y + 1]}");
            Assert.Equal(colour[cell] == 0, shape[cell] == 0);
        }
        Assert.True(wrong.Count == 0, string.Join("; ", wrong));
        Assert.Contains((byte)(1 + (int)ObjectColour.Red), colour);
        Assert.Contains((byte)(1 + (int)ObjectColour.Yellow), colour);
        Assert.Contains((byte)(1 + (int)Shape.Star), shape);
        Assert.Contains((byte)(1 + (int)Shape.Square), shape);
        // The large star lies in the top-left grid cell (rows and columns 0-5 of 16, a cell of the margin for its jitter),
        // the small square in the top-right one.
        for (int cell = 0; cell < 256; cell++)
        {
            if (colour[cell] == 1 + (int)ObjectColour.Red) Assert.True(cell / 16 < 7 && cell % 16 < 7, $"red at cell {cell}");
            if (colour[cell] == 1 + (int)ObjectColour.Yellow) Assert.True(cell / 16 < 7 && cell % 16 > 9, $"yellow at cell {cell}");
        }
    }

    [Fact]
    public void Cell_targets_follow_a_moving_object_through_the_clip()
    {
        var clip = new SceneSpec(ObjectColour.White, [new SceneObject(Shape.Circle, ObjectColour.Green, GridCell.Centre, ObjectSize.Large)],
                                 RenderStyle.Flat, Motion.LeftToRight);
        double MeanColumn(float phase)
        {
            var (colour, _) = LatentCellTargets.For(new TrainingExample(0, clip, Language.English, "", phase, false, 5), 128, 16);
            var cells = Enumerable.Range(0, 256).Where(c => colour[c] != 0).ToArray();
            Assert.NotEmpty(cells);
            return cells.Average(c => c % 16);
        }
        Assert.True(MeanColumn(0f) + 4 < MeanColumn(1f));
    }

    [Fact]
    public void The_head_learns_the_cell_classes_from_token_states_and_its_gradient_reaches_them()
    {
        manual_seed(3);
        using var head = new LatentCellAttributeHead(hiddenSize: 8, patchSize: 2);
        var features = randn(2, 16, 8).requires_grad_();                                          // 4 x 4 tokens of 8 x 8 cells
        var colour = randint(0, LatentCellTargets.ColourClasses, [2, 8, 8]);
        var shape = randint(0, LatentCellTargets.ShapeClasses, [2, 8, 8]);
        var loss = head.Loss(features, colour, shape);
        // Untrained: about ln(classes) per group.
        Assert.InRange(loss.item<float>(), 1.0, 3.5);
        loss.backward();
        Assert.True(features.grad!.abs().sum().item<float>() > 0);
        // A token's logits land on the p x p cells it covers, as the transformer's output does: token 5 (row 1, column 1 of
        // the 4 x 4 tokens) drives cells 2-3 x 2-3 of the 8 x 8 grid and nothing else.
        using (no_grad())
        {
            var oneToken = zeros(1, 16, 8);
            oneToken[0, 5] = ones(8);
            var delta = head.Logits(oneToken, 8, 8) - head.Logits(zeros(1, 16, 8), 8, 8);       // [1, K, 8, 8]
            var touched = delta.abs().sum(1)[0] > 1e-6;                                             // [8, 8]
            Assert.Equal(4, touched.sum().item<long>());
            Assert.True(touched[2..4, 2..4].all().item<bool>());
        }
        var optimizer = optim.Adam(head.parameters(), 0.05);
        var fixedFeatures = randn(2, 16, 8);
        float first = 0, last = 0;
        for (int step = 0; step < 300; step++)
        {
            optimizer.zero_grad();
            var l = head.Loss(fixedFeatures, colour, shape);
            if (step == 0) first = l.item<float>();
            last = l.item<float>();
            l.backward();
            optimizer.step();
        }
        Assert.True(last < first, $"{first} -> {last}");
    }

    [Fact]
    public void The_loss_weighs_a_background_cell_at_the_background_weight_of_an_object_cell()
    {
        manual_seed(4);
        using var head = new LatentCellAttributeHead(hiddenSize: 8, patchSize: 2);
        using var _ = no_grad();
        var features = randn(1, 4, 8);                                                            // 2 x 2 tokens of 4 x 4 cells
        var colour = zeros(new long[] { 1, 4, 4 }, dtype: ScalarType.Int64);
        var shape = zeros(new long[] { 1, 4, 4 }, dtype: ScalarType.Int64);
        colour[0, 1, 2] = 3; shape[0, 1, 2] = 2;                                                  // one object cell of 16
        // By hand: each group's per-cell cross-entropy, averaged with weight w on background cells and 1 on the object's.
        var logits = head.Logits(features, 4, 4);                                                 // [1, K, 4, 4]
        double Weighted(Tensor groupLogits, Tensor target)
        {
            var perCell = nn.functional.cross_entropy(groupLogits, target, reduction: nn.Reduction.None)[0]; // [4, 4]
            double w = LatentCellAttributeHead.BackgroundWeight;
            double objectLoss = perCell[1, 2].item<float>();
            double background = perCell.sum().item<float>() - objectLoss;
            return (w * background + objectLoss) / (15 * w + 1);
        }
        double expected = (Weighted(logits[.., ..LatentCellTargets.ColourClasses], colour)
                         + Weighted(logits[.., LatentCellTargets.ColourClasses..], shape)) / 2;
        Assert.Equal(expected, head.Loss(features, colour, shape).item<float>(), 4);
        Assert.InRange(LatentCellAttributeHead.BackgroundWeight, 0.01, 0.99);
    }

    [Fact]
    public void Forward_with_features_returns_the_same_output_as_forward_and_the_block_states()
    {
        manual_seed(1);
        var config = new HunyuanDiTConfig
        {
            NumAttentionHeads = 2, AttentionHeadDim = 8, HiddenSize = 16, InChannels = 4, PatchSize = 2, SampleSize = 8, NumLayers = 4,
            CrossAttentionDim = 8, CrossAttentionDimT5 = 8, PooledProjectionDim = 8, TextLen = 3, TextLenT5 = 3,
            UseStyleCondAndImageMetaSize = false, LearnSigma = false,
        };
        using var model = new HunyuanDiT2DModel(config);
        model.eval();
        using var _ = no_grad();
        var x = randn(2, 4, 8, 8);
        var t = tensor(new float[] { 10, 500 });
        var bert = randn(2, 3, 8); var bertMask = ones(2, 3, dtype: ScalarType.Int64);
        var t5 = randn(2, 3, 8); var t5Mask = ones(2, 3, dtype: ScalarType.Int64);
        var rope = model.RotaryTables(64, 64);
        var plain = model.forward(x, t, bert, bertMask, t5, t5Mask, rope);
        using var text = model.PrepareText(bert, bertMask, t5, t5Mask);
        var (output, features) = model.ForwardWithFeatures(x, t, text, rope, featureBlock: 2);
        Assert.True(allclose(plain, output, rtol: 1e-5, atol: 1e-6));
        Assert.Equal([2L, 16, 16], features.shape);
        var (_, earlier) = model.ForwardWithFeatures(x, t, text, rope, featureBlock: 1);
        Assert.False(allclose(earlier, features));                                                // a block's own states
        Assert.Throws<ArgumentOutOfRangeException>(() => model.ForwardWithFeatures(x, t, text, rope, featureBlock: 4));
    }
}
