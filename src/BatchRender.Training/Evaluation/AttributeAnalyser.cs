using BatchRender.Training.Dataset;
using SixLabors.ImageSharp;
using SixLabors.ImageSharp.PixelFormats;

namespace BatchRender.Training.Evaluation;

/// <summary>Reads the attributes of a demo-world image back from its pixels: background colour, each object's
/// colour, shape, grid cell and size, and the style; for clips the motion and the frame-to-frame change.
/// It knows the scene it expects only to pair detected objects with expected ones (and how many to look for);
/// every attribute is measured from the pixels.
/// <para>Method: name each pixel's colour (nearest palette prototype in CIELAB, flat or ink-wash variant, after a
/// light blur); the commonest name is the background; connected regions of other names are object candidates.
/// Each object's colour is the median of its most distinct pixels; its outline is where the pixel is more than
/// half-way from the background colour to the object colour; its shape is the best intersection-over-union among
/// the five shape templates, scaled to the same area, at a few rotations, crisp or blurred; its size follows from that area.</para></summary>
public sealed class AttributeAnalyser
{
    const float LabelBlurSigma = 1f;
    const float MinForegroundDelta = 12f;   // ΔE from the background below which nothing counts as an object
    static readonly float[] Rotations = [-10f, -5f, 0f, 5f, 10f];
    /// <summary>Gaussian sigmas (pixels) at which each shape template is also drawn (<see cref="TemplateFit"/>).</summary>
    static readonly float[] TemplateBlurs = [0f, 1.5f, 3f];
    /// <summary>Pixels beyond a template's extent that its blurred versions can reach (3 sigma of the widest blur).</summary>
    static readonly int TemplateMargin = (int)MathF.Ceiling(3 * TemplateBlurs.Max()) + 2;

    /// <summary>Ink wash when the score exceeds zero (see <see cref="StyleScore"/>).</summary>
    public static float StyleScore(StyleFeatures f) =>
        (f.WashTexture - 2.5f) / 1.5f + (f.EdgeWidth - 2.4f) / 1f + (f.PaperTone - 1f) / 4f;

    public SceneVerdict Analyse(Image<Rgb24> image, SceneSpec expected)
    {
        var raw = LabImage.From(image);
        var smooth = raw.Smoothed(LabelBlurSigma);
        int w = raw.Width, h = raw.Height, n = w * h;
        float unit = MathF.Min(w, h);

        // Background: the commonest colour name.
        var names = new ObjectColour[n];
        var counts = new int[Palette.Colours.Count];
        for (int i = 0; i < n; i++) counts[(int)(names[i] = ColourNamer.Name(smooth[i]))]++;
        var background = (ObjectColour)Array.IndexOf(counts, counts.Max());
        var backgroundPixels = Enumerable.Range(0, n).Where(i => names[i] == background).ToList();
        var backgroundLab = smooth.Median(backgroundPixels);

        // Object candidates: connected regions of other colours, distinct enough from the background.
        var candidate = new bool[n];
        for (int i = 0; i < n; i++)
            candidate[i] = names[i] != background && smooth[i].DistanceTo(backgroundLab) > MinForegroundDelta;
        float smallest = MathF.PI * Sq(SceneLayout.SmallRadius * unit) * 0.5f; // about the smallest object's area
        var regions = Components(candidate, w, h).Where(r => r.Count >= 0.25f * smallest).ToList();
        if (regions.Count < expected.Objects.Count) regions = SplitByColour(regions, names, w, h, smallest, expected.Objects.Count);

        var detected = regions.Select(r => Measure(r, raw, smooth, backgroundLab, background, w, h))
            .Where(d => d is not null).Select(d => d!).OrderByDescending(d => d.Object.Area).ToList();

        var matched = Match(expected.Objects, detected.Select(d => d.Object).ToList());
        int extra = detected.Count(d => !matched.Contains(d.Object) && d.Object.Area >= smallest);
        var features = Style(raw, candidate, backgroundLab, background, detected, w, h);
        var style = StyleScore(features) > 0 ? RenderStyle.InkWash : RenderStyle.Flat;
        return new SceneVerdict(expected, background, style,
            expected.Objects.Select((o, i) => new ObjectVerdict(o, matched[i])).ToList(), extra, features);
    }

    public VideoVerdict AnalyseVideo(IReadOnlyList<Image<Rgb24>> frames, SceneSpec expected)
    {
        if (frames.Count < 2) throw new ArgumentException("a clip needs at least two frames", nameof(frames));
        var verdicts = frames.Select(f => Analyse(f, expected)).ToList();
        var points = verdicts.Select((v, i) => (Phase: i / (float)(frames.Count - 1), Found: v.Objects[0].Found))
            .Where(p => p.Found is not null).ToList();
        float change = 0;
        for (int i = 1; i < frames.Count; i++) change += MeanAbsoluteChange(frames[i - 1], frames[i]);
        change /= frames.Count - 1;
        if (points.Count < 2) return new VideoVerdict(expected, ObservedMotion.None, 0, 0, 1, change, verdicts);

        // Least-squares slopes over the clip's phase: displacement (fraction of the frame) and log-area trend.
        float dx = Slope(points.Select(p => (p.Phase, p.Found!.CentroidX / frames[0].Width)).ToList());
        float dy = Slope(points.Select(p => (p.Phase, p.Found!.CentroidY / frames[0].Height)).ToList());
        float areaRatio = MathF.Exp(Slope(points.Select(p => (p.Phase, MathF.Log(p.Found!.Area))).ToList()));
        var observed = ObservedMotion.None;
        if (MathF.Max(MathF.Abs(dx), MathF.Abs(dy)) > 0.25f && MathF.Abs(MathF.Abs(dx) - MathF.Abs(dy)) > 0.15f)
            observed = MathF.Abs(dx) > MathF.Abs(dy)
                ? dx > 0 ? ObservedMotion.LeftToRight : ObservedMotion.RightToLeft
                : dy > 0 ? ObservedMotion.Down : ObservedMotion.Up;
        else if (areaRatio > 1.6f)
            observed = ObservedMotion.Grow;
        return new VideoVerdict(expected, observed, dx, dy, areaRatio, change, verdicts);
    }

    /// <summary>Mean absolute difference of two images, over pixels and channels, as a fraction of 255.</summary>
    public static float MeanAbsoluteChange(Image<Rgb24> a, Image<Rgb24> b)
    {
        if (a.Width != b.Width || a.Height != b.Height) throw new ArgumentException("images differ in size");
        var pa = new Rgb24[a.Width * a.Height]; var pb = new Rgb24[pa.Length];
        a.CopyPixelDataTo(pa); b.CopyPixelDataTo(pb);
        long sum = 0;
        for (int i = 0; i < pa.Length; i++)
            sum += Math.Abs(pa[i].R - pb[i].R) + Math.Abs(pa[i].G - pb[i].G) + Math.Abs(pa[i].B - pb[i].B);
        return sum / (3f * 255f * pa.Length);
    }

    // ---- objects ----

    sealed record Detection(DetectedObject Object, List<int> Pixels, bool[] Mask, LabColour Lab);

    Detection? Measure(List<int> region, LabImage raw, LabImage smooth, LabColour backgroundLab, ObjectColour background, int w, int h)
    {
        // Colour: median of the half of the region farthest from the background (soft edges are mixtures).
        var core = region.OrderByDescending(i => smooth[i].DistanceTo(backgroundLab)).Take(Math.Max(1, region.Count / 2)).ToList();
        var objectLab = smooth.Median(core);
        var colour = ColourNamer.Nearest(objectLab, background);

        // Outline: pixels near the region that are more than half-way from the background to the object colour.
        var near = Dilate(ToMask(region, w * h), w, h, 3);
        var pixels = new List<int>();
        var inside = new bool[w * h];
        for (int i = 0; i < near.Length; i++)
            if (near[i] && Progress(smooth[i], backgroundLab, objectLab) > 0.5f) { pixels.Add(i); inside[i] = true; }
        if (pixels.Count == 0) return null;
        float cx = 0, cy = 0;
        foreach (var i in pixels) { cx += i % w + 0.5f; cy += i / w + 0.5f; }
        cx /= pixels.Count; cy /= pixels.Count;

        Shape bestShape = Shape.Circle; float bestFit = -1;
        foreach (var shape in Palette.Shapes)
        {
            float radius = MathF.Sqrt(pixels.Count / ShapeGeometry.UnitArea(shape));
            foreach (var degrees in Rotations)
            {
                float fit = TemplateFit(inside, pixels.Count, shape, cx, cy, radius, degrees * MathF.PI / 180f, w, h);
                if (fit > bestFit) { bestFit = fit; bestShape = shape; }
            }
        }
        float nominal = MathF.Sqrt(pixels.Count / ShapeGeometry.UnitArea(bestShape));
        float unit = MathF.Min(w, h);
        var size = nominal / unit > MathF.Sqrt(SceneLayout.LargeRadius * SceneLayout.SmallRadius) ? ObjectSize.Large : ObjectSize.Small;
        var cell = new GridCell(Math.Clamp((int)(cy * 3 / h), 0, 2), Math.Clamp((int)(cx * 3 / w), 0, 2));
        return new Detection(new DetectedObject(colour, bestShape, cell, size, cx, cy, pixels.Count, nominal, bestFit), pixels, inside, objectLab);
    }

    /// <summary>The best intersection-over-union of the object's outline with the template drawn crisp or blurred by
    /// each of <see cref="TemplateBlurs"/> and cut at half coverage, as the outline itself was. Blur rounds a star's
    /// points and fills its notches, and a soft render of a star fits a circle about as well as a crisp star; the same
    /// star blurred fits it better than either, while a circle stays a circle at any blur.</summary>
    static float TemplateFit(bool[] inside, int insideCount, Shape shape, float cx, float cy, float radius, float rotation, int w, int h)
    {
        int x0 = Math.Max(0, (int)(cx - 1.4f * radius) - TemplateMargin), x1 = Math.Min(w - 1, (int)(cx + 1.4f * radius) + TemplateMargin);
        int y0 = Math.Max(0, (int)(cy - 1.4f * radius) - TemplateMargin), y1 = Math.Min(h - 1, (int)(cy + 1.4f * radius) + TemplateMargin);
        int ww = x1 - x0 + 1, wh = y1 - y0 + 1;
        float cos = MathF.Cos(-rotation), sin = MathF.Sin(-rotation);
        var template = new float[ww * wh];
        for (int y = y0; y <= y1; y++)
            for (int x = x0; x <= x1; x++)
            {
                float dx = (x + 0.5f - cx) / radius, dy = (y + 0.5f - cy) / radius;
                if (ShapeGeometry.Distance(shape, dx * cos - dy * sin, dx * sin + dy * cos) < 0) template[(y - y0) * ww + x - x0] = 1;
            }
        float best = 0;
        var blurred = new float[template.Length];
        foreach (var sigma in TemplateBlurs)
        {
            if (sigma > 0) GaussianBlur.Apply(template, blurred, ww, wh, sigma);
            var drawn = sigma > 0 ? blurred : template;
            int intersection = 0, templateArea = 0;
            for (int y = y0; y <= y1; y++)
                for (int x = x0; x <= x1; x++)
                {
                    bool t = drawn[(y - y0) * ww + x - x0] >= 0.5f;
                    if (t) templateArea++;
                    if (t && inside[y * w + x]) intersection++;
                }
            int union = templateArea + insideCount - intersection; // mask pixels outside the window count too
            if (union > 0) best = MathF.Max(best, intersection / (float)union);
        }
        return best;
    }

    // Pairs expected objects with detected ones: the assignment with the fewest attribute disagreements.
    static DetectedObject?[] Match(IReadOnlyList<SceneObject> expected, List<DetectedObject> found)
    {
        var candidates = found.Take(expected.Count + 2).ToList();
        var best = new DetectedObject?[expected.Count];
        if (expected.Count == 1)
        {
            // One object expected: the largest, unless a smaller one of at least half its size agrees better.
            if (candidates.Count > 0)
                best[0] = candidates.Where(c => c.Area >= candidates[0].Area / 2).OrderBy(c => Cost(expected[0], c)).First();
            return best;
        }
        float bestCost = float.MaxValue;
        for (int a = -1; a < candidates.Count; a++)
            for (int b = -1; b < candidates.Count; b++)
            {
                if (a == b && a >= 0) continue;
                float cost = (a < 0 ? 10 : Cost(expected[0], candidates[a])) + (b < 0 ? 10 : Cost(expected[1], candidates[b]));
                if (cost < bestCost)
                {
                    bestCost = cost;
                    best[0] = a < 0 ? null : candidates[a];
                    best[1] = b < 0 ? null : candidates[b];
                }
            }
        return best;
    }

    static float Cost(SceneObject e, DetectedObject d) =>
        (e.Colour != d.Colour ? 2 : 0) + (e.Cell != d.Cell ? 2 : 0) + (e.Shape != d.Shape ? 1 : 0) + (e.Size != d.Size ? 1 : 0);

    // Two touching objects of different colours form one region; split it by colour name when objects are missing.
    static List<List<int>> SplitByColour(List<List<int>> regions, ObjectColour[] names, int w, int h, float smallest, int wanted)
    {
        var result = new List<List<int>>();
        foreach (var region in regions.OrderByDescending(r => r.Count))
        {
            var groups = region.GroupBy(i => names[i]).OrderByDescending(g => g.Count()).ToList();
            // Each colour must hold a solid body: eroding by two pixels removes the thin rings of mixed colour that
            // anti-aliased or soft edges leave around a single object.
            var bodies = groups.Count < 2 || result.Count + regions.Count - 1 >= wanted ? [] : groups.Take(2)
                .Select(g => Components(Erode(ToMask(g, w * h), w, h, 2), w, h).Where(c => c.Count >= 0.15f * smallest).ToList())
                .ToList();
            if (bodies.Count == 2 && bodies.All(b => b.Count > 0)) result.AddRange(bodies.SelectMany(b => b));
            else result.Add(region);
        }
        return result;
    }

    // ---- style ----

    StyleFeatures Style(LabImage raw, bool[] candidate, LabColour backgroundLab, ObjectColour background, List<Detection> objects, int w, int h)
    {
        // Wash: spread of the lightly smoothed background well away from any object (noise averages out, blotches stay).
        var washed = raw.Smoothed(2f);
        var near = Dilate(candidate, w, h, 6);
        var far = new List<int>();
        for (int y = 4; y < h - 4; y++)
            for (int x = 4; x < w - 4; x++)
                if (!near[y * w + x]) far.Add(y * w + x);
        float wash = 0;
        if (far.Count > 0)
        {
            var centre = washed.Median(far);
            var d = far.Select(i => washed[i].DistanceTo(centre)).OrderBy(v => v).ToList();
            wash = d[(int)(d.Count * 0.75)];
        }

        // Edge width: pixels 15%..85% of the way from background to object, per pixel of outline.
        float edge = 0; int counted = 0;
        foreach (var o in objects)
        {
            int outline = o.Pixels.Count(i => Neighbours4(i, w, h).Any(j => !o.Mask[j]));
            if (outline == 0) continue;
            var ring = Dilate(o.Mask, w, h, 6);
            int mixed = 0;
            for (int i = 0; i < ring.Length; i++)
                if (ring[i] && Progress(raw[i], backgroundLab, o.Lab) is > 0.15f and < 0.85f) mixed++;
            edge += mixed / (float)outline; counted++;
        }
        edge = counted > 0 ? edge / counted : 0;

        var (flat, ink) = ColourNamer.StyleDistances(far.Count > 0 ? raw.Median(far) : backgroundLab, background);
        return new StyleFeatures(wash, edge, flat - ink);
    }

    // ---- pixel helpers ----

    static float Progress(LabColour p, LabColour from, LabColour to)
    {
        float vl = to.L - from.L, va = to.A - from.A, vb = to.B - from.B;
        float len2 = vl * vl + va * va + vb * vb;
        return len2 <= 0 ? 0 : ((p.L - from.L) * vl + (p.A - from.A) * va + (p.B - from.B) * vb) / len2;
    }

    static float Slope(List<(float X, float Y)> points)
    {
        float mx = points.Average(p => p.X), my = points.Average(p => p.Y);
        float sxy = points.Sum(p => (p.X - mx) * (p.Y - my)), sxx = points.Sum(p => (p.X - mx) * (p.X - mx));
        return sxx <= 0 ? 0 : sxy / sxx;
    }

    static float Sq(float v) => v * v;

    static IEnumerable<int> Neighbours4(int i, int w, int h)
    {
        int x = i % w, y = i / w;
        if (x > 0) yield return i - 1;
        if (x < w - 1) yield return i + 1;
        if (y > 0) yield return i - w;
        if (y < h - 1) yield return i + w;
    }

    /// <summary>8-connected components of a mask, each as a list of pixel indices.</summary>
    static List<List<int>> Components(bool[] mask, int w, int h)
    {
        var seen = new bool[mask.Length];
        var result = new List<List<int>>();
        var stack = new Stack<int>();
        for (int start = 0; start < mask.Length; start++)
        {
            if (!mask[start] || seen[start]) continue;
            var component = new List<int>();
            seen[start] = true; stack.Push(start);
            while (stack.Count > 0)
            {
                int i = stack.Pop(); component.Add(i);
                int x = i % w, y = i / w;
                for (int dy = -1; dy <= 1; dy++)
                    for (int dx = -1; dx <= 1; dx++)
                    {
                        int nx = x + dx, ny = y + dy;
                        if (nx < 0 || ny < 0 || nx >= w || ny >= h) continue;
                        int j = ny * w + nx;
                        if (mask[j] && !seen[j]) { seen[j] = true; stack.Push(j); }
                    }
            }
            result.Add(component);
        }
        return result;
    }

    static bool[] ToMask(IEnumerable<int> pixels, int n)
    {
        var mask = new bool[n];
        foreach (var i in pixels) mask[i] = true;
        return mask;
    }

    static bool[] Erode(bool[] mask, int w, int h, int radius)
    {
        var outside = Dilate(mask.Select(m => !m).ToArray(), w, h, radius);
        return outside.Select(o => !o).ToArray();
    }

    /// <summary>The pixels within <paramref name="radius"/> (chessboard distance) of the mask: a separable max filter.</summary>
    static bool[] Dilate(bool[] mask, int w, int h, int radius)
    {
        var rows = new bool[mask.Length];
        for (int y = 0; y < h; y++)
        {
            int last = int.MinValue / 2; // x of the last set pixel seen going right
            for (int x = 0; x < w; x++) { if (mask[y * w + x]) last = x; rows[y * w + x] = x - last <= radius; }
            last = int.MaxValue / 2;
            for (int x = w - 1; x >= 0; x--) { if (mask[y * w + x]) last = x; if (last - x <= radius) rows[y * w + x] = true; }
        }
        var result = new bool[mask.Length];
        for (int x = 0; x < w; x++)
        {
            int last = int.MinValue / 2;
            for (int y = 0; y < h; y++) { if (rows[y * w + x]) last = y; result[y * w + x] = y - last <= radius; }
            last = int.MaxValue / 2;
            for (int y = h - 1; y >= 0; y--) { if (rows[y * w + x]) last = y; if (last - y <= radius) result[y * w + x] = true; }
        }
        return result;
    }
}
