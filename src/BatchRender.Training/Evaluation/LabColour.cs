using BatchRender.Training.Dataset;

namespace BatchRender.Training.Evaluation;

/// <summary>CIELAB (D65) colour: Euclidean distance in it (ΔE 1976) tracks how different two colours look.</summary>
public readonly record struct LabColour(float L, float A, float B)
{
    public static LabColour FromRgb(float r, float g, float b)
    {
        return FromLinear(Linear(r), Linear(g), Linear(b));
    }

    static LabColour FromLinear(float lr, float lg, float lb)
    {
        float x = (0.4124f * lr + 0.3576f * lg + 0.1805f * lb) / 0.95047f;
        float y = 0.2126f * lr + 0.7152f * lg + 0.0722f * lb;
        float z = (0.0193f * lr + 0.1192f * lg + 0.9505f * lb) / 1.08883f;
        float fx = F(x), fy = F(y), fz = F(z);
        return new LabColour(116 * fy - 16, 500 * (fx - fy), 200 * (fy - fz));
    }

    public static LabColour FromRgb(byte r, byte g, byte b) => FromLinear(LinearTable[r], LinearTable[g], LinearTable[b]);

    static readonly float[] LinearTable = Enumerable.Range(0, 256).Select(v => Linear(v / 255f)).ToArray();

    public float SquaredDistanceTo(LabColour o)
    {
        float dl = L - o.L, da = A - o.A, db = B - o.B;
        return dl * dl + da * da + db * db;
    }

    public float DistanceTo(LabColour o)
    {
        float dl = L - o.L, da = A - o.A, db = B - o.B;
        return MathF.Sqrt(dl * dl + da * da + db * db);
    }

    static float Linear(float c) => c <= 0.04045f ? c / 12.92f : MathF.Pow((c + 0.055f) / 1.055f, 2.4f);
    static float F(float t) => t > 0.008856f ? MathF.Cbrt(t) : 7.787f * t + 16f / 116f;
}

/// <summary>Names colours: the nearest of the palette's prototypes, each colour as flat paint and as an ink wash.</summary>
public static class ColourNamer
{
    static readonly (ObjectColour Colour, LabColour Lab)[] Prototypes =
        Palette.Colours.SelectMany(c => new[]
        {
            (c, FromTuple(Palette.Rgb(c))),
            (c, FromTuple(Palette.InkRgb(c, 0f))),
            (c, FromTuple(Palette.InkRgb(c, 2 * Palette.MeanInkThinning))),
        }).ToArray();

    public static ObjectColour Name(LabColour lab) => Nearest(lab, null);

    /// <summary>The nearest colour other than <paramref name="except"/>.</summary>
    public static ObjectColour Nearest(LabColour lab, ObjectColour? except)
    {
        var best = ObjectColour.Red; float bestDistance = float.MaxValue;
        foreach (var (colour, proto) in Prototypes)
        {
            if (colour == except) continue;
            float d = lab.SquaredDistanceTo(proto);
            if (d < bestDistance) { bestDistance = d; best = colour; }
        }
        return best;
    }

    /// <summary>Distance to the flat and to the ink-wash prototype of a colour.</summary>
    public static (float Flat, float Ink) StyleDistances(LabColour lab, ObjectColour colour) =>
        (lab.DistanceTo(FromTuple(Palette.Rgb(colour))), lab.DistanceTo(FromTuple(Palette.InkRgb(colour, Palette.MeanInkThinning))));

    static LabColour FromTuple((byte R, byte G, byte B) c) => LabColour.FromRgb(c.R, c.G, c.B);
    static LabColour FromTuple((float R, float G, float B) c) => LabColour.FromRgb(c.R, c.G, c.B);
}
