namespace BatchRender.Training.Dataset;

/// <summary>An object placed in pixels: where a scene's object actually lands in one image or frame.</summary>
public sealed record PlacedObject(
    Shape Shape, ObjectColour Colour, float CentreX, float CentreY, float Radius, float Rotation, float Growth,
    float BrushAngle, int TextureSeed);

/// <summary>Turns a scene into pixel placements: cell centres with a little seeded jitter, sizes, rotation, and for
/// video the path (or growth) at a frame phase. The same seed gives the same placement, texture and jitter in every
/// frame of a clip, so frames differ only by the motion.</summary>
public static class SceneLayout
{
    /// <summary>Nominal radius of a large and a small object as a fraction of the image width.</summary>
    public const float LargeRadius = 0.15f, SmallRadius = 0.095f;

    /// <summary>Moving objects travel from this fraction of the image to one minus it.</summary>
    public const float PathStart = 0.2f;

    /// <summary>Grow clips start at this fraction of the large radius; bloom clips at this flower growth.</summary>
    public const float GrowStart = 0.35f, BloomStart = 0.3f;

    public static float RadiusFraction(ObjectSize size) => size == ObjectSize.Large ? LargeRadius : SmallRadius;

    public static IReadOnlyList<PlacedObject> Place(SceneSpec scene, int width, int height, int seed, float phase = 1f)
    {
        var random = new Random(seed);
        var placed = new List<PlacedObject>(scene.Objects.Count);
        float unit = MathF.Min(width, height);
        foreach (var o in scene.Objects)
        {
            float radius = RadiusFraction(o.Size) * unit;
            float jitter = (o.Size == ObjectSize.Large ? 0.012f : 0.035f) * unit;
            float cx = (o.Cell.Column + 0.5f) * width / 3f + Uniform(random, jitter);
            float cy = (o.Cell.Row + 0.5f) * height / 3f + Uniform(random, jitter);
            float rotation = Uniform(random, 6f) * MathF.PI / 180f;
            float brushAngle = (float)(random.NextDouble() * MathF.PI);
            int textureSeed = random.Next();
            float growth = 1f;
            float t = Math.Clamp(phase, 0f, 1f);
            switch (scene.Motion)
            {
                case Motion.LeftToRight: cx = width * (PathStart + (1 - 2 * PathStart) * t); break;
                case Motion.RightToLeft: cx = width * (1 - PathStart - (1 - 2 * PathStart) * t); break;
                case Motion.Down: cy = height * (PathStart + (1 - 2 * PathStart) * t); break;
                case Motion.Up: cy = height * (1 - PathStart - (1 - 2 * PathStart) * t); break;
                case Motion.Grow: radius = LargeRadius * unit * (GrowStart + (1 - GrowStart) * t); break;
                case Motion.Bloom: radius = LargeRadius * unit; growth = BloomStart + (1 - BloomStart) * t; break;
            }
            placed.Add(new PlacedObject(o.Shape, o.Colour, cx, cy, radius, rotation, growth, brushAngle, textureSeed));
        }
        return placed;
    }

    static float Uniform(Random random, float halfRange) => (float)(random.NextDouble() * 2 - 1) * halfRange;
}
