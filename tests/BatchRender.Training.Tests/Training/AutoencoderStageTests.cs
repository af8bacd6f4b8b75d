using BatchRender.Training.Dataset;
using BatchRender.Training.Training;
using static TorchSharp.torch;

namespace BatchRender.Training.Tests.Training;

public class AutoencoderStageTests
{
    private static readonly DemoDataset Dataset = new(new DemoDatasetOptions { DegradedShare = 0 });

    [Theory]
    [InlineData(RenderStyle.Flat)]
    [InlineData(RenderStyle.InkWash)]
    public void The_object_mask_covers_the_object_in_its_cell_and_none_of_the_background(RenderStyle style)
    {
        foreach (var (cell, size) in new[] { (new GridCell(0, 0), ObjectSize.Small), (new GridCell(2, 1), ObjectSize.Large), (new GridCell(1, 2), ObjectSize.Small) })
        {
            var scene = new SceneSpec(ObjectColour.Blue, [new SceneObject(Shape.Star, ObjectColour.Red, cell, size)], style);
            var example = new TrainingExample(0, scene, Language.English, "", null, false, 11);
            var chw = new float[3 * 128 * 128];
            Dataset.RenderChw(example, chw);
            using var mask = AutoencoderStage.ObjectMask(tensor(chw).reshape(1, 3, 128, 128))[0, 0];     // [H, W]
            double share = mask.mean().item<float>();
            Assert.InRange(share, 0.003, 0.2);
            // Every object pixel lies in the object's cell (a margin for the placement jitter).
            using var pixels = mask.nonzero();
            var rows = pixels[.., 0].to(ScalarType.Float32);
            var columns = pixels[.., 1].to(ScalarType.Float32);
            Assert.InRange(rows.mean().item<float>() / 128 * 3, cell.Row, cell.Row + 1);
            Assert.InRange(columns.mean().item<float>() / 128 * 3, cell.Column, cell.Column + 1);
        }
    }

    [Fact]
    public void Half_the_crops_are_centred_on_an_object()
    {
        var (crops, masks) = AutoencoderStage.Crops(Dataset, 0, 64, 32, seed: 3);
        Assert.Equal([64L, 3, 32, 32], crops.shape);
        Assert.Equal([64L, 1, 32, 32], masks.shape);
        var withObject = Enumerable.Range(0, 64).Count(i => masks[i].sum().item<float>() > 0);
        // A random 32 px crop of a 128 px scene holds an object about a third of the time; centred crops always do.
        Assert.InRange(withObject, 36, 64);
    }
}
