using SixLabors.ImageSharp;
using SixLabors.ImageSharp.PixelFormats;

namespace BatchRender.Training.Dataset;

/// <summary>Rasterises a scene from signed distance functions. Flat: solid fills with one-pixel analytic
/// anti-aliasing. Ink wash: pigment multiplied onto a paper tone, blotchy washes in the background, brush streaks
/// that thin the pigment inside objects, darker pooled rims, and soft ragged edges; colours stay recognisable.</summary>
public static class SceneRenderer
{
    public static Image<Rgb24> Render(SceneSpec scene, int size, int seed, float phase = 1f) =>
        Render(scene, size, size, seed, phase);

    public static Image<Rgb24> Render(SceneSpec scene, int width, int height, int seed, float phase = 1f)
    {
        var objects = SceneLayout.Place(scene, width, height, seed, phase);
        var image = new Image<Rgb24>(width, height);
        float scale = MathF.Min(width, height) / 128f; // texture scales are tuned at 128 px
        var paper = new ValueNoise(seed ^ 0x5EED);
        image.ProcessPixelRows(rows =>
        {
            for (int y = 0; y < height; y++)
            {
                var row = rows.GetRowSpan(y);
                for (int x = 0; x < width; x++)
                {
                    float px = x + 0.5f, py = y + 0.5f;
                    var c = scene.Style == RenderStyle.Flat
                        ? Flat(scene.Background)
                        : InkBackground(scene.Background, paper, px / scale, py / scale);
                    foreach (var o in objects)
                        c = scene.Style == RenderStyle.Flat ? FlatObject(o, px, py, c) : InkObject(o, px, py, scale, c);
                    row[x] = new Rgb24(ToByte(c.R), ToByte(c.G), ToByte(c.B));
                }
            }
        });
        return image;
    }

    /// <summary>Signed distance in pixels from a placed object's edge (negative inside).</summary>
    public static float Distance(PlacedObject o, float px, float py)
    {
        float dx = (px - o.CentreX) / o.Radius, dy = (py - o.CentreY) / o.Radius;
        float cos = MathF.Cos(-o.Rotation), sin = MathF.Sin(-o.Rotation);
        return ShapeGeometry.Distance(o.Shape, dx * cos - dy * sin, dx * sin + dy * cos, o.Growth) * o.Radius;
    }

    static (float R, float G, float B) Flat(ObjectColour colour)
    {
        var (r, g, b) = Palette.Rgb(colour);
        return (r / 255f, g / 255f, b / 255f);
    }

    static (float R, float G, float B) FlatObject(PlacedObject o, float px, float py, (float R, float G, float B) under)
    {
        float coverage = Math.Clamp(0.5f - Distance(o, px, py), 0f, 1f);
        return coverage <= 0 ? under : Mix(under, Flat(o.Colour), coverage);
    }

    static (float R, float G, float B) InkBackground(ObjectColour colour, ValueNoise noise, float x, float y)
    {
        float wash = noise.Fractal(x / 22f, y / 22f, 3);            // broad blotches of thinner and thicker wash
        float grain = noise.Sample(x * 0.9f + 311f, y * 0.9f + 97f); // paper fibre
        return Palette.InkRgb(colour, 0.22f * wash + 0.05f * grain);
    }

    static (float R, float G, float B) InkObject(PlacedObject o, float px, float py, float scale, (float R, float G, float B) under)
    {
        var noise = new ValueNoise(o.TextureSeed);
        float d = Distance(o, px, py);
        if (d > 6f * scale) return under;
        // Ragged edge: displace the boundary by low-frequency noise, then fade over a few pixels.
        float ragged = (noise.Fractal(px / (5f * scale), py / (5f * scale), 2) - 0.5f) * MathF.Min(3f * scale, 0.2f * o.Radius);
        float edge = d + ragged;
        float softness = 2.2f * scale;
        float coverage = SmoothStep(softness, -softness, edge);
        if (coverage <= 0) return under;
        // Brush streaks: noise stretched along the stroke direction, in the object's frame so it moves with it.
        float lx = (px - o.CentreX) / scale, ly = (py - o.CentreY) / scale;
        float cos = MathF.Cos(o.BrushAngle), sin = MathF.Sin(o.BrushAngle);
        float along = lx * cos + ly * sin, across = -lx * sin + ly * cos;
        float streak = noise.Fractal(along / 14f + 50f, across / 2.5f + 50f, 3);
        var c = Palette.InkRgb(o.Colour, 0.16f * streak);
        // Pigment pools at the edge of a wash: a darker rim just inside the boundary.
        float rim = MathF.Exp(-(edge + 2f * scale) * (edge + 2f * scale) / (2f * scale * scale));
        float darken = 1f - 0.14f * rim;
        c = (c.R * darken, c.G * darken, c.B * darken);
        return Mix(under, c, coverage);
    }

    static float SmoothStep(float edge0, float edge1, float x)
    {
        float t = Math.Clamp((x - edge0) / (edge1 - edge0), 0f, 1f);
        return t * t * (3 - 2 * t);
    }

    static (float R, float G, float B) Mix((float R, float G, float B) a, (float R, float G, float B) b, float t) =>
        (a.R + (b.R - a.R) * t, a.G + (b.G - a.G) * t, a.B + (b.B - a.B) * t);

    static byte ToByte(float v) => (byte)Math.Clamp((int)MathF.Round(v * 255f), 0, 255);
}
