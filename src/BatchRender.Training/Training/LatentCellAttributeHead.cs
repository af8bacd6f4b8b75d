using BatchRender.Model.Transformers;
using BatchRender.Training.Dataset;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace BatchRender.Training.Training;

/// <summary>
/// What each latent cell of an example shows: the colour and the shape of the object covering the cell's centre
/// (class 0 = background; the object drawn last wins, as in <see cref="SceneRenderer"/>), from the very placement the
/// cached image was rendered with (<see cref="SceneLayout.Place"/> with the example's render seed and frame phase).
/// </summary>
internal static class LatentCellTargets
{
    public static int ColourClasses => Palette.Colours.Count + 1;
    public static int ShapeClasses => Palette.Shapes.Count + 1;

    /// <summary>[cells] colour classes and [cells] shape classes, row by row over the <paramref name="grid"/> x
    /// <paramref name="grid"/> latent grid of an <paramref name="imageSize"/> image.</summary>
    public static (byte[] Colour, byte[] Shape) For(TrainingExample example, int imageSize, int grid)
    {
        var objects = SceneLayout.Place(example.Scene, imageSize, imageSize, example.RenderSeed, example.FramePhase ?? 1f);
        var colour = new byte[grid * grid];
        var shape = new byte[grid * grid];
        float cell = (float)imageSize / grid;
        for (int row = 0; row < grid; row++)
        for (int column = 0; column < grid; column++)
        {
            float px = (column + 0.5f) * cell, py = (row + 0.5f) * cell;
            foreach (var o in objects)
                if (SceneRenderer.Distance(o, px, py) < 0)
                {
                    colour[row * grid + column] = (byte)(1 + (int)o.Colour);
                    shape[row * grid + column] = (byte)(1 + (int)o.Shape);
                }
        }
        return (colour, shape);
    }
}

/// <summary>
/// A training-only linear head (not part of the shipped model) that reads, from the DiT's token states after one block,
/// the colour and shape of what every latent cell under the token shows (<see cref="LatentCellTargets"/>). The text
/// attribute heads make the encoders state the scene; this makes the DiT bind it to positions: at high noise the
/// noisy latent says nothing, so a token can only know that it is part of a red star by attending to the words that say
/// so. Without it that binding is learnt only through the v-loss, where an object's colour is a few percent of the
/// error; the renders then put objects in the right place and size but take a neighbouring hue or the other object's
/// colour. It unpatchifies like proj_out: each token predicts its p x p cells.
/// </summary>
internal sealed class LatentCellAttributeHead : nn.Module
{
    public Linear proj;
    private readonly int patchSize;

    public LatentCellAttributeHead(long hiddenSize, int patchSize) : base(nameof(LatentCellAttributeHead))
    {
        this.patchSize = patchSize;
        proj = nn.Linear(hiddenSize, (long)patchSize * patchSize * (LatentCellTargets.ColourClasses + LatentCellTargets.ShapeClasses));
        RegisterComponents();
    }

    /// <summary>[B, N, hidden] token states -> [B, colour + shape classes, h, w] logits per latent cell.</summary>
    public Tensor Logits(Tensor features, long h, long w) =>
        HunyuanDiT2DModel.Unpatchify(proj.call(features), h / patchSize, w / patchSize, patchSize);

    /// <summary>Weight of a background cell against an object cell. Objects cover a few percent of the cells, so an
    /// unweighted mean is mostly the easy background (session 8's head ended at 0.07, while the renders still took the
    /// wrong colour); at 0.1, with 5 % object cells, the object cells carry about a third of the weight.</summary>
    public const double BackgroundWeight = 0.1;

    /// <summary>The colour and shape cross-entropies over every latent cell, averaged with background cells weighted
    /// <see cref="BackgroundWeight"/>. Every example counts, those whose caption was dropped too: the DiT sees the image
    /// in the noisy latent, and what it cannot know there (at high noise without words) only teaches the head a prior.</summary>
    /// <param name="features">[B, (h/p) * (w/p), hidden] token states</param>
    /// <param name="colour">[B, h, w] colour classes</param>
    /// <param name="shape">[B, h, w] shape classes</param>
    public Tensor Loss(Tensor features, Tensor colour, Tensor shape)
    {
        using var scope = NewDisposeScope();
        var logits = Logits(features, colour.shape[1], colour.shape[2]);                          // [B, K, h, w]
        var colourLoss = nn.functional.cross_entropy(logits[.., ..LatentCellTargets.ColourClasses], colour,
            ClassWeights(LatentCellTargets.ColourClasses, logits));
        var shapeLoss = nn.functional.cross_entropy(logits[.., LatentCellTargets.ColourClasses..], shape,
            ClassWeights(LatentCellTargets.ShapeClasses, logits));
        return ((colourLoss + shapeLoss) / 2).MoveToOuterDisposeScope();
    }

    /// <summary>[classes]: <see cref="BackgroundWeight"/> for class 0 (background), 1 for the rest; cross_entropy
    /// divides by the summed weights of the targets, so the loss stays a weighted mean.</summary>
    private static Tensor ClassWeights(int classes, Tensor logits)
    {
        var weights = ones(classes, dtype: logits.dtype, device: logits.device);
        weights[0] = BackgroundWeight;
        return weights;
    }
}
