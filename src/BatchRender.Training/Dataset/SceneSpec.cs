namespace BatchRender.Training.Dataset;

/// <summary>One object of a scene: what a caption says about it and what the analyser checks.</summary>
public sealed record SceneObject(Shape Shape, ObjectColour Colour, GridCell Cell, ObjectSize Size)
{
    public override string ToString() => $"{Size} {Colour} {Shape} @ {Cell}".ToLowerInvariant();
}

/// <summary>The content of an image or a clip. For a video (<see cref="Motion"/> set) the scene has one object,
/// its cell is the centre (where a moving object is half-way through the clip, and where growing ones stay).</summary>
public sealed record SceneSpec(ObjectColour Background, IReadOnlyList<SceneObject> Objects, RenderStyle Style, Motion? Motion = null)
{
    public bool IsVideo => Motion is not null;

    /// <summary>Checks the invariants every generated scene keeps; throws with the reason otherwise.</summary>
    public SceneSpec Validate()
    {
        if (Objects.Count is < 1 or > 2)
            throw new ArgumentException($"a scene has one or two objects, not {Objects.Count}");
        if (Objects.Any(o => o.Colour == Background))
            throw new ArgumentException($"an object has the background colour {Background}");
        if (Objects.Count == 2 && (Objects[0].Cell == Objects[1].Cell || Objects[0].Colour == Objects[1].Colour))
            throw new ArgumentException("the two objects of a scene need different cells and different colours");
        if (Motion is { } m)
        {
            if (Objects.Count != 1) throw new ArgumentException("a video scene has exactly one object");
            if (Objects[0].Cell != GridCell.Centre) throw new ArgumentException("a video object's cell is the centre");
            if (m == Dataset.Motion.Bloom && Objects[0].Shape != Shape.Flower) throw new ArgumentException("only flowers bloom");
        }
        return this;
    }

    public override string ToString() =>
        $"{string.Join(" + ", Objects)} on {Background} ({Style}{(Motion is { } m ? ", " + m : "")})".ToLowerInvariant();

    // Records compare lists by reference; scenes are values.
    public bool Equals(SceneSpec? other) =>
        other is not null && Background == other.Background && Style == other.Style && Motion == other.Motion
        && Objects.SequenceEqual(other.Objects);

    public override int GetHashCode()
    {
        var hash = new HashCode();
        hash.Add(Background); hash.Add(Style); hash.Add(Motion);
        foreach (var o in Objects) hash.Add(o);
        return hash.ToHashCode();
    }
}
