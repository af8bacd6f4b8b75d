using BatchRender.Training.Dataset;

namespace BatchRender.Training.Evaluation;

/// <summary>An object the analyser found: its attributes as measured.</summary>
/// <param name="Radius">Nominal radius in pixels, from the area and the fitted shape.</param>
/// <param name="ShapeFit">Intersection over union of the object and the best shape template (0..1).</param>
public sealed record DetectedObject(
    ObjectColour Colour, Shape Shape, GridCell Cell, ObjectSize Size,
    float CentroidX, float CentroidY, int Area, float Radius, float ShapeFit);

/// <summary>One expected object and what was found for it (null: nothing matched).</summary>
public sealed record ObjectVerdict(SceneObject Expected, DetectedObject? Found)
{
    public bool Colour => Found?.Colour == Expected.Colour;
    public bool Shape => Found?.Shape == Expected.Shape;
    public bool Position => Found?.Cell == Expected.Cell;
    public bool Size => Found?.Size == Expected.Size;
}

/// <summary>The analyser's judgement of one image against its scene. An attribute is correct when it is correct
/// for every object; <see cref="All"/> also needs no extra object of comparable size.</summary>
public sealed record SceneVerdict(
    SceneSpec Expected, ObjectColour DetectedBackground, RenderStyle DetectedStyle,
    IReadOnlyList<ObjectVerdict> Objects, int ExtraObjects, StyleFeatures StyleFeatures)
{
    public bool Background => DetectedBackground == Expected.Background;
    public bool Style => DetectedStyle == Expected.Style;
    public bool Colour => Objects.All(o => o.Colour);
    public bool Shape => Objects.All(o => o.Shape);
    public bool Position => Objects.All(o => o.Position);
    public bool Size => Objects.All(o => o.Size);
    public bool All => Background && Style && Colour && Shape && Position && Size && ExtraObjects == 0;

    /// <summary>Attribute name (as in the eval JSON) to verdict.</summary>
    public IReadOnlyDictionary<string, bool> ByAttribute => new Dictionary<string, bool>
    {
        ["shape"] = Shape, ["colour"] = Colour, ["position"] = Position, ["size"] = Size,
        ["background"] = Background, ["style"] = Style, ["all"] = All,
    };
}

/// <summary>What tells ink wash from flat. <paramref name="WashTexture"/>: spread (ΔE) of the smoothed background,
/// the blotches of a wash; <paramref name="EdgeWidth"/>: pixels across an object's edge between 15% and 85% of the
/// way from background to object colour; <paramref name="PaperTone"/>: how much nearer the background is to the
/// ink-wash than to the flat version of its colour (ΔE, positive = ink).</summary>
public sealed record StyleFeatures(float WashTexture, float EdgeWidth, float PaperTone);

/// <summary>Motion as the analyser sees it in a clip. Grow covers blooming too (both are an area trend).</summary>
public enum ObservedMotion { None, LeftToRight, RightToLeft, Up, Down, Grow }

public sealed record VideoVerdict(
    SceneSpec Expected, ObservedMotion Observed, float DisplacementX, float DisplacementY, float AreaRatio,
    float MeanFrameChange, IReadOnlyList<SceneVerdict> Frames)
{
    public static ObservedMotion Expect(Motion motion) => motion switch
    {
        Motion.LeftToRight => ObservedMotion.LeftToRight, Motion.RightToLeft => ObservedMotion.RightToLeft,
        Motion.Up => ObservedMotion.Up, Motion.Down => ObservedMotion.Down,
        Motion.Grow or Motion.Bloom => ObservedMotion.Grow,
        _ => throw new ArgumentOutOfRangeException(nameof(motion)),
    };

    public bool Direction => Expected.Motion is { } m && Observed == Expect(m);
}
