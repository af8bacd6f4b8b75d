using BatchRender.Model.Autoencoders;
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

    [Fact]
    public void The_latent_cache_marks_the_latent_cells_of_each_object_and_keeps_them_through_save_and_load()
    {
        var dataset = new DemoDataset(new DemoDatasetOptions { ImageSize = 64, DegradedShare = 0 });
        using var vae = new AutoencoderKL(new AutoencoderKLConfig
        {
            BlockOutChannels = [8, 8, 16, 16], LayersPerBlock = 1, LatentChannels = 4, NormNumGroups = 4, SampleSize = 64, ScalingFactor = 1.0,
        });
        var cache = LatentCache.Build(vae, dataset, 24, null, CancellationToken.None);
        Assert.Equal([4L, 8, 8], cache.Shape);
        using var cells = cache.ObjectCellBatch(Enumerable.Range(0, 24).ToArray());                 // [24, 1, 8, 8]
        Assert.Equal([24L, 1, 8, 8], cells.shape);
        int stills = 0;
        for (int i = 0; i < 24; i++)
        {
            var scene = dataset.GetExample(i).Scene;
            using var marked = cells[i, 0];
            double share = marked.mean().item<float>();
            // Objects cover a few percent of the pixels; a cell counts when any of its 64 pixels is an object's.
            Assert.InRange(share, 1.0 / 64, 0.5);
            if (scene.IsVideo || scene.Objects.Count != 1) continue;
            stills++;
            var cell = scene.Objects[0].Cell;
            using var at = marked.nonzero().to(ScalarType.Float32);                                 // [P, 2] (row, column)
            Assert.InRange((at[.., 0].mean().item<float>() + 0.5) / 8 * 3, cell.Row, cell.Row + 1);
            Assert.InRange((at[.., 1].mean().item<float>() + 0.5) / 8 * 3, cell.Column, cell.Column + 1);
        }
        Assert.True(stills >= 5, $"only {stills} single-object stills among 24 examples");

        var path = Path.Combine(Directory.CreateTempSubdirectory("latent-cache-").FullName, "latents.bin");
        try
        {
            cache.Save(path, "vae-a");
            var loaded = LatentCache.TryLoad(path, "vae-a")!;
            Assert.Equal(cache.Latents, loaded.Latents);
            Assert.Equal(cache.ObjectCells, loaded.ObjectCells);
            Assert.Null(LatentCache.TryLoad(path, "vae-b"));
            // A cache of the earlier layout (fingerprint first, no object cells) is rebuilt, not misread.
            using (var writer = new BinaryWriter(File.Create(path)))
            {
                writer.Write("vae-a");
                writer.Write(1);
                foreach (var d in cache.Shape) writer.Write(d);
                writer.Write(new byte[4 * 4 * 8 * 8]);
            }
            Assert.Null(LatentCache.TryLoad(path, "vae-a"));
        }
        finally
        {
            Directory.Delete(Path.GetDirectoryName(path)!, recursive: true);
        }
    }
}
