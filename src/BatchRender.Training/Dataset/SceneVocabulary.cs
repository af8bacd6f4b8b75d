namespace BatchRender.Training.Dataset;

// The closed vocabulary of the demo world: every attribute a caption names and the analyser checks.
// Order matters only for determinism (enumeration order feeds the seeded choices).

public enum Shape { Circle, Square, Triangle, Star, Flower }

public enum ObjectSize { Small, Large }

public enum RenderStyle { Flat, InkWash }

/// <summary>Video motion. Moving objects travel through the centre cell; Grow and Bloom stay in the centre.
/// Bloom is only used with flowers (petals open); the analyser judges it, like Grow, by the area trend.</summary>
public enum Motion { LeftToRight, RightToLeft, Up, Down, Grow, Bloom }

public enum Language { English, Chinese }

public static class LanguageCodes
{
    public static string Code(this Language language) => language == Language.English ? "en" : "zh";
}

/// <summary>One of the nine colours. The RGB values are far apart in CIELAB (the closest pair, red and
/// orange, is about 37 ΔE apart) so the analyser can name a colour after blur, noise and the ink-wash tint.</summary>
public enum ObjectColour { Red, Orange, Yellow, Green, Blue, Purple, Pink, White, Black }

/// <summary>A cell of the 3x3 grid: Row 0 = top, Column 0 = left.</summary>
public readonly record struct GridCell(int Row, int Column)
{
    public static readonly GridCell Centre = new(1, 1);

    /// <summary>All nine cells, row by row.</summary>
    public static IReadOnlyList<GridCell> All { get; } =
        Enumerable.Range(0, 9).Select(i => new GridCell(i / 3, i % 3)).ToArray();

    public int Index => Row * 3 + Column;

    public override string ToString() => $"{new[] { "top", "middle", "bottom" }[Row]}-{new[] { "left", "centre", "right" }[Column]}";
}

public static class Palette
{
    public static IReadOnlyList<ObjectColour> Colours { get; } = Enum.GetValues<ObjectColour>();
    public static IReadOnlyList<Shape> Shapes { get; } = Enum.GetValues<Shape>();

    /// <summary>The flat-style sRGB value of a colour.</summary>
    public static (byte R, byte G, byte B) Rgb(ObjectColour colour) => colour switch
    {
        ObjectColour.Red => (215, 35, 35),
        ObjectColour.Orange => (240, 135, 20),
        ObjectColour.Yellow => (245, 215, 30),
        ObjectColour.Green => (40, 160, 60),
        ObjectColour.Blue => (35, 80, 210),
        ObjectColour.Purple => (135, 50, 175),
        ObjectColour.Pink => (245, 140, 195),
        ObjectColour.White => (245, 245, 245),
        ObjectColour.Black => (25, 25, 25),
        _ => throw new ArgumentOutOfRangeException(nameof(colour)),
    };

    /// <summary>The tone of the paper an ink-wash painting is made on (pigment multiplies it).</summary>
    public static (float R, float G, float B) PaperTone { get; } = (242f / 255f, 234f / 255f, 216f / 255f);

    /// <summary>sRGB in 0..1 of a colour as a wash of pigment on paper:
    /// slightly desaturated, multiplied by the paper tone, then thinned toward the paper by <paramref name="thinning"/>
    /// (0 = full pigment). The renderer and the analyser's colour prototypes both use this one formula.</summary>
    public static (float R, float G, float B) InkRgb(ObjectColour colour, float thinning)
    {
        var (r, g, b) = Rgb(colour);
        float fr = r / 255f, fg = g / 255f, fb = b / 255f;
        float grey = 0.299f * fr + 0.587f * fg + 0.114f * fb;
        const float desaturate = 0.12f;
        fr += (grey - fr) * desaturate; fg += (grey - fg) * desaturate; fb += (grey - fb) * desaturate;
        var (pr, pg, pb) = PaperTone;
        fr *= pr; fg *= pg; fb *= pb;
        return (fr + (pr - fr) * thinning, fg + (pg - fg) * thinning, fb + (pb - fb) * thinning);
    }

    /// <summary>Mean pigment thinning of the ink-wash texture (what an average ink pixel looks like).</summary>
    public const float MeanInkThinning = 0.08f;
}
