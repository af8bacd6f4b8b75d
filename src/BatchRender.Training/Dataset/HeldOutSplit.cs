namespace BatchRender.Training.Dataset;

/// <summary>The attribute combinations that training never shows: colour x shape x cell triples for still
/// objects, colour x shape x motion triples for clips. Drawn from a seed, so the trainer and the evaluation agree
/// without sharing a file. Every colour, shape, cell and motion, and every pair of them, still occurs in training
/// (the constructor checks it); only the particular triples are new at evaluation.</summary>
public sealed class HeldOutSplit
{
    readonly HashSet<(ObjectColour, Shape, GridCell)> stills;
    readonly HashSet<(ObjectColour, Shape, Motion)> clips;

    public HeldOutSplit(int seed, double fraction = 0.1)
    {
        if (fraction is <= 0 or >= 0.5) throw new ArgumentOutOfRangeException(nameof(fraction), fraction, "must be in (0, 0.5)");
        var random = new Random(seed);
        var allStills = (from c in Palette.Colours from s in Palette.Shapes from cell in GridCell.All select (c, s, cell)).ToArray();
        var allClips = (from c in Palette.Colours from s in Palette.Shapes from m in Enum.GetValues<Motion>()
                        where m != Motion.Bloom || s == Shape.Flower select (c, s, m)).ToArray();
        stills = Pick(allStills, fraction, random, t => [(t.c, t.s), (t.c, t.cell), (t.s, t.cell)]);
        clips = Pick(allClips, fraction, random, t => [(t.c, t.s), (t.c, t.m), (t.s, t.m)]);
    }

    public IReadOnlyCollection<(ObjectColour Colour, Shape Shape, GridCell Cell)> HeldOutStills => stills;
    public IReadOnlyCollection<(ObjectColour Colour, Shape Shape, Motion Motion)> HeldOutClips => clips;

    public bool IsHeldOut(SceneObject o) => stills.Contains((o.Colour, o.Shape, o.Cell));

    /// <summary>A still scene is held out when any of its objects is; a clip when its colour x shape x motion is.</summary>
    public bool IsHeldOut(SceneSpec scene) => scene.Motion is { } m
        ? clips.Contains((scene.Objects[0].Colour, scene.Objects[0].Shape, m))
        : scene.Objects.Any(IsHeldOut);

    // Shuffle, then take triples while every pair they contain keeps at least one triple in training.
    static HashSet<T> Pick<T>(T[] all, double fraction, Random random, Func<T, object[]> pairs) where T : notnull
    {
        random.Shuffle(all);
        int target = (int)Math.Round(all.Length * fraction);
        var remaining = new Dictionary<object, int>();
        foreach (var t in all) foreach (var p in pairs(t)) remaining[p] = remaining.GetValueOrDefault(p) + 1;
        var held = new HashSet<T>();
        foreach (var t in all)
        {
            if (held.Count == target) break;
            var ps = pairs(t);
            if (ps.Any(p => remaining[p] <= 1)) continue;
            foreach (var p in ps) remaining[p]--;
            held.Add(t);
        }
        return held;
    }
}
