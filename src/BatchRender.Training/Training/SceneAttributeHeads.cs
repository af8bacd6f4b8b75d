using BatchRender.Training.Dataset;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace BatchRender.Training.Training;

/// <summary>
/// The scene a caption names, as class targets for <see cref="SceneAttributeHeads"/>: per grid cell the colour, shape
/// and size of the object there (class 0 = no object), the background, the style and the motion (0 = still).
/// Cells make the targets independent of the order the caption names two objects in. A group the caption does not
/// name (no caption, only "blurry, low quality", a clip's background) is <see cref="Ignore"/>.
/// </summary>
internal static class SceneAttributeTargets
{
    public const long Ignore = -100;
    private const int Cells = 9;

    /// <summary>Classes per group, in target order: 9 x (colour, shape, size), background, style, motion.</summary>
    public static IReadOnlyList<int> GroupSizes { get; } =
    [
        .. Enumerable.Range(0, Cells).SelectMany(_ => new[] { Palette.Colours.Count + 1, Palette.Shapes.Count + 1, 3 }),
        Palette.Colours.Count, 2, Enum.GetValues<Motion>().Length + 1,
    ];

    public static int Groups => GroupSizes.Count;

    /// <param name="scene">The scene the caption describes, or null when the caption names none.</param>
    public static long[] For(SceneSpec? scene)
    {
        var targets = new long[Groups];
        if (scene is null)
        {
            Array.Fill(targets, Ignore);
            return targets;
        }
        foreach (var o in scene.Objects)
        {
            int g = 3 * o.Cell.Index;
            targets[g] = 1 + (int)o.Colour;
            targets[g + 1] = 1 + (int)o.Shape;
            targets[g + 2] = 1 + (int)o.Size;
        }
        targets[3 * Cells] = scene.IsVideo ? Ignore : (int)scene.Background;   // a clip's caption may leave it out
        targets[3 * Cells + 1] = (int)scene.Style;                             // unnamed only when flat
        targets[3 * Cells + 2] = scene.Motion is { } m ? 1 + (int)m : 0;
        return targets;
    }
}

/// <summary>
/// Training-only linear heads that read the scene back from a text encoder's masked-mean token states (they are not
/// part of the shipped model). Trained jointly with the diffusion loss, they give the from-scratch BERT and T5 a direct
/// signal from the first step: every attribute, bound to its grid cell, must be in the states the DiT attends to, rather
/// than waiting for the diffusion loss to discover through cross-attention which words matter.
/// </summary>
internal sealed class SceneAttributeHeads : nn.Module
{
    public Linear bert;
    public Linear t5;

    public SceneAttributeHeads(long bertWidth, long t5Width) : base(nameof(SceneAttributeHeads))
    {
        int classes = SceneAttributeTargets.GroupSizes.Sum();
        bert = nn.Linear(bertWidth, classes);
        t5 = nn.Linear(t5Width, classes);
        RegisterComponents();
    }

    /// <summary>Mean cross-entropy over the attribute groups of both encoders (each group averaged over the rows that
    /// name it). <paramref name="targets"/>: [B, groups] from <see cref="SceneAttributeTargets.For"/>.</summary>
    public Tensor Loss(Tensor bertStates, Tensor bertMask, Tensor t5States, Tensor t5Mask, long[][] targets)
    {
        using var scope = NewDisposeScope();
        var loss = (GroupLoss(bert.call(Pool(bertStates, bertMask)), targets) + GroupLoss(t5.call(Pool(t5States, t5Mask)), targets)) / 2;
        return loss.MoveToOuterDisposeScope();
    }

    /// <summary>[B, L, D] states, [B, L] mask -> [B, D] mean over the tokens.</summary>
    private static Tensor Pool(Tensor states, Tensor mask)
    {
        var m = mask.to(states.dtype).unsqueeze(-1);                      // [B, L, 1]
        return (states * m).sum(1) / m.sum(1).clamp_min(1);
    }

    private static Tensor GroupLoss(Tensor logits, long[][] targets)        // logits [B, sum of group sizes]
    {
        var sizes = SceneAttributeTargets.GroupSizes;
        Tensor? total = null;
        int groupsNamed = 0, offset = 0;
        for (int g = 0; g < sizes.Count; offset += sizes[g], g++)
        {
            var column = targets.Select(t => t[g]).ToArray();
            int named = column.Count(c => c != SceneAttributeTargets.Ignore);
            if (named == 0) continue;
            var ce = nn.functional.cross_entropy(logits[.., offset..(offset + sizes[g])], tensor(column),
                                                 ignore_index: SceneAttributeTargets.Ignore, reduction: nn.Reduction.Sum) / named;
            total = total is null ? ce : total + ce;
            groupsNamed++;
        }
        return total is null ? zeros(1).sum() : total / groupsNamed;
    }
}
