namespace BatchRender.Training.Dataset;

/// <summary>Signed distance functions of the shapes in unit size (the object's nominal radius is 1), centred on
/// their area centroid, y pointing down (image convention). Negative inside. The renderer rasterises them with
/// analytic anti-aliasing (flat) or a soft, displaced edge (ink wash); the analyser fits them as templates.</summary>
public static class ShapeGeometry
{
    public const float CircleRadius = 0.9f;
    public const float SquareHalfSide = 0.78f;
    public const float StarInnerRadius = 0.45f;

    static readonly (float X, float Y)[] Triangle = RegularPolygon(3, 1f);
    static readonly (float X, float Y)[] Star = StarPolygon(5, 1f, StarInnerRadius);

    /// <summary>Signed distance (unit size) at point (x, y) relative to the centre, already rotated into the shape frame.
    /// <paramref name="growth"/> in (0, 1] opens a flower's petals (1 = in full bloom); other shapes ignore it.</summary>
    public static float Distance(Shape shape, float x, float y, float growth = 1f) => shape switch
    {
        Shape.Circle => MathF.Sqrt(x * x + y * y) - CircleRadius,
        Shape.Square => Box(x, y, SquareHalfSide),
        Shape.Triangle => Polygon(Triangle, x, y),
        Shape.Star => Polygon(Star, x, y),
        Shape.Flower => Flower(x, y, growth),
        _ => throw new ArgumentOutOfRangeException(nameof(shape)),
    };

    /// <summary>Area of the unit shape (in full bloom), for turning a measured area back into a radius.</summary>
    public static float UnitArea(Shape shape) => UnitAreas.Value[(int)shape];

    static readonly Lazy<float[]> UnitAreas = new(() => Palette.Shapes.Select(s => MeasureArea(s)).ToArray());

    /// <summary>Area of the unit shape at a growth stage, by sampling a fine grid.</summary>
    public static float MeasureArea(Shape shape, float growth = 1f)
    {
        const int n = 400; const float extent = 1.2f; float step = 2 * extent / n; int inside = 0;
        for (int j = 0; j < n; j++)
            for (int i = 0; i < n; i++)
                if (Distance(shape, -extent + (i + 0.5f) * step, -extent + (j + 0.5f) * step, growth) < 0) inside++;
        return inside * step * step;
    }

    // A flower: a centre disc and six round petals that move outward and swell as it opens. Six, not five, so that
    // a blurred star (five rounded points) never looks like a flower.
    public const int Petals = 6;

    static float Flower(float x, float y, float growth)
    {
        float g = Math.Clamp(growth, 0.05f, 1f);
        float d = MathF.Sqrt(x * x + y * y) - (0.30f + 0.12f * g);
        float petalDistance = 0.58f * g, petalRadius = 0.36f * g;
        for (int k = 0; k < Petals; k++)
        {
            float a = -MathF.PI / 2 + k * 2 * MathF.PI / Petals;
            float px = x - petalDistance * MathF.Cos(a), py = y - petalDistance * MathF.Sin(a);
            d = MathF.Min(d, MathF.Sqrt(px * px + py * py) - petalRadius);
        }
        return d;
    }

    static float Box(float x, float y, float half)
    {
        float qx = MathF.Abs(x) - half, qy = MathF.Abs(y) - half;
        float ox = MathF.Max(qx, 0), oy = MathF.Max(qy, 0);
        return MathF.Sqrt(ox * ox + oy * oy) + MathF.Min(MathF.Max(qx, qy), 0);
    }

    // Exact signed distance to a simple polygon (winding test for the sign).
    static float Polygon((float X, float Y)[] v, float px, float py)
    {
        float d = (px - v[0].X) * (px - v[0].X) + (py - v[0].Y) * (py - v[0].Y);
        float s = 1;
        for (int i = 0, j = v.Length - 1; i < v.Length; j = i, i++)
        {
            float ex = v[j].X - v[i].X, ey = v[j].Y - v[i].Y;
            float wx = px - v[i].X, wy = py - v[i].Y;
            float t = Math.Clamp((wx * ex + wy * ey) / (ex * ex + ey * ey), 0, 1);
            float bx = wx - ex * t, by = wy - ey * t;
            d = MathF.Min(d, bx * bx + by * by);
            bool c1 = py >= v[i].Y, c2 = py < v[j].Y, c3 = ex * wy > ey * wx;
            if ((c1 && c2 && c3) || (!c1 && !c2 && !c3)) s = -s;
        }
        return s * MathF.Sqrt(d);
    }

    // First vertex points up (-y); regular polygons and stars are centred on their centroid.
    static (float X, float Y)[] RegularPolygon(int n, float r) =>
        Enumerable.Range(0, n).Select(k => Polar(r, -MathF.PI / 2 + k * 2 * MathF.PI / n)).ToArray();

    static (float X, float Y)[] StarPolygon(int points, float outer, float inner) =>
        Enumerable.Range(0, 2 * points)
            .Select(k => Polar(k % 2 == 0 ? outer : inner, -MathF.PI / 2 + k * MathF.PI / points)).ToArray();

    static (float X, float Y) Polar(float r, float a) => (r * MathF.Cos(a), r * MathF.Sin(a));
}
