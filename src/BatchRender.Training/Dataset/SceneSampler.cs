namespace BatchRender.Training.Dataset;

/// <summary>Draws random scenes: one or two objects (different cells and colours), a background colour that
/// differs from every object, a style; or a one-object clip with a motion.</summary>
public static class SceneSampler
{
    public static SceneSpec Still(Random random, int objectCount, RenderStyle style)
    {
        var cells = GridCell.All.ToArray();
        random.Shuffle(cells);
        var colours = Palette.Colours.ToArray();
        random.Shuffle(colours);
        var objects = Enumerable.Range(0, objectCount)
            .Select(i => new SceneObject(Pick(random, Palette.Shapes), colours[i], cells[i], random.Next(2) == 0 ? ObjectSize.Small : ObjectSize.Large))
            .ToArray();
        return new SceneSpec(colours[objectCount + random.Next(colours.Length - objectCount)], objects, style).Validate();
    }

    public static SceneSpec Clip(Random random, RenderStyle style)
    {
        var colours = Palette.Colours.ToArray();
        random.Shuffle(colours);
        var shape = Pick(random, Palette.Shapes);
        var motions = Enum.GetValues<Motion>().Where(m => m != Motion.Bloom || shape == Shape.Flower).ToArray();
        var motion = Pick(random, motions);
        var size = motion is Motion.Grow or Motion.Bloom || random.Next(2) == 0 ? ObjectSize.Large : ObjectSize.Small;
        return new SceneSpec(colours[1 + random.Next(colours.Length - 1)],
            [new SceneObject(shape, colours[0], GridCell.Centre, size)], style, motion).Validate();
    }

    static T Pick<T>(Random random, IReadOnlyList<T> items) => items[random.Next(items.Count)];
}
