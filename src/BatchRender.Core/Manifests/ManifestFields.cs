using BatchRender.Core.Manifests.Json;

namespace BatchRender.Core.Manifests;

// The manifest's shape and the reading of its objects, shared by both passes: the validator reads with a collecting
// problem sink, the expander with one that throws. Only valid values are stored; a field left null is absent (or
// invalid, and then reported).

/// <summary>Render settings an item may set and <c>defaults</c> may set for every item.</summary>
internal class RenderFields
{
    public int? Width, Height, Steps;
    public double? GuidanceScale;
    public long? Seed;
    public string? Sampler, Quantization, NegativePrompt;
    /// <summary>Width or height was given but is invalid (reported), so the pixel limit cannot be checked.</summary>
    public bool SizeInvalid;
}

internal sealed class ItemFields : RenderFields
{
    public string? Id, Prompt;
    public VideoFields? Video;
    public InpaintFields? Inpaint;
}

internal sealed class VideoFields
{
    public int? Frames, Fps;
    public double? MotionScale;
}

internal sealed class InpaintFields
{
    public string? Image, Mask;
    public double? Strength;
}

internal static class ManifestFieldSets
{
    private static readonly string[] RenderNames = ["width", "height", "steps", "guidanceScale", "negativePrompt", "sampler", "seed", "quantization"];

    public static readonly FieldSet Root = new("the manifest",
        ["schemaVersion", "jobId", "model", "defaults", "items"],
        required: ["schemaVersion", "items"],
        hints: RenderNames.ToDictionary(n => n, n => $"'{n}' goes in 'defaults' (for every item) or in an item")
            .Concat(new Dictionary<string, string>
            {
                ["version"] = "the version field is 'schemaVersion' (it must be 1)",
                ["prompt"] = "each item of 'items' has its own 'prompt'",
            }).ToDictionary());

    public static readonly FieldSet Defaults = new("'defaults'", RenderNames,
        hints: new Dictionary<string, string>
        {
            ["prompt"] = "each item has its own 'prompt'; 'defaults' holds settings shared by the items",
            ["model"] = "'model' is set once, at the top level of the manifest",
            ["video"] = "'video' is set per item",
            ["inpaint"] = "'inpaint' is set per item",
            ["id"] = "each item has its own 'id'",
        });

    public static readonly FieldSet Item = new("an item",
        ["id", "prompt", .. RenderNames, "video", "inpaint"],
        required: ["id", "prompt"],
        hints: new Dictionary<string, string>
        {
            ["frames"] = "'frames' goes inside the item's 'video' object",
            ["fps"] = "'fps' goes inside the item's 'video' object",
            ["motionScale"] = "'motionScale' goes inside the item's 'video' object",
            ["image"] = "'image' goes inside the item's 'inpaint' object",
            ["mask"] = "'mask' goes inside the item's 'inpaint' object",
            ["strength"] = "'strength' goes inside the item's 'inpaint' object",
            ["model"] = "'model' is set once, at the top level of the manifest",
            ["jobId"] = "'jobId' is set once, at the top level of the manifest",
        });

    public static readonly FieldSet Video = new("'video'", ["frames", "fps", "motionScale"]);
    public static readonly FieldSet Inpaint = new("'inpaint'", ["image", "mask", "strength"], required: ["image", "mask"]);
}

/// <summary>Reads the manifest's objects (defaults, items and their parts) field by field, checking each value.</summary>
internal sealed class ManifestFieldReader(StrictJsonReader json, ManifestRules rules)
{
    public async ValueTask<RenderFields?> ReadDefaultsAsync(CancellationToken cancellationToken)
    {
        if (json.BeginObject() is not { } scope) return null;
        var defaults = new RenderFields();
        while (await json.NextFieldAsync(scope, ManifestFieldSets.Defaults, cancellationToken).ConfigureAwait(false) is { } name)
            ReadRenderField(name, defaults);
        return defaults;
    }

    /// <summary>Reads one item; null when it is not an object. Missing required fields and an item that is both a video
    /// and an inpainting are reported here; cross-item rules (unique ids) and the pixel limit are the validator's.</summary>
    public async ValueTask<ItemFields?> ReadItemAsync(CancellationToken cancellationToken)
    {
        if (json.BeginObject("must be an object ({ \"id\": ..., \"prompt\": ... })") is not { } scope) return null;
        var item = new ItemFields();
        while (await json.NextFieldAsync(scope, ManifestFieldSets.Item, cancellationToken).ConfigureAwait(false) is { } name)
        {
            switch (name)
            {
                case "id":
                    if (json.TryGetString(out var id))
                    {
                        if (ManifestIds.Explain(id) is { } why) json.Report($"{StrictJsonReader.Quote(id)} is not a valid id: it {why}");
                        else item.Id = id;
                    }
                    break;
                case "prompt":
                    if (json.TryGetString(out var prompt))
                    {
                        if (rules.CheckPrompt(prompt, allowEmpty: false) is { } problem) json.Report(problem);
                        else item.Prompt = prompt;
                    }
                    break;
                case "video":
                    item.Video = await ReadVideoAsync(cancellationToken).ConfigureAwait(false);
                    break;
                case "inpaint":
                    item.Inpaint = await ReadInpaintAsync(cancellationToken).ConfigureAwait(false);
                    break;
                default:
                    ReadRenderField(name, item);
                    break;
            }
        }
        // The reader is on the item's closing brace: the path names the item.
        if (!json.Had(scope, "id")) json.Report("missing required field 'id' (a unique name for the item's outputs, like \"star-001\")");
        if (!json.Had(scope, "prompt")) json.Report("missing required field 'prompt'");
        if (json.Had(scope, "video") && json.Had(scope, "inpaint"))
            json.Report("has both 'video' and 'inpaint'; an item is an image, a video or an inpainting, so give at most one of them");
        return item;
    }

    private async ValueTask<VideoFields?> ReadVideoAsync(CancellationToken cancellationToken)
    {
        if (json.BeginObject("must be an object ({ \"frames\": 24, \"fps\": 8, \"motionScale\": 1.0 })") is not { } scope) return null;
        var video = new VideoFields();
        while (await json.NextFieldAsync(scope, ManifestFieldSets.Video, cancellationToken).ConfigureAwait(false) is { } name)
        {
            switch (name)
            {
                case "frames": if (json.TryGetInteger(rules.Frames, out var frames)) video.Frames = (int)frames; break;
                case "fps": if (json.TryGetInteger(ManifestRules.Fps, out var fps)) video.Fps = (int)fps; break;
                case "motionScale": if (json.TryGetNumber(ManifestRules.MotionScale, out var motion)) video.MotionScale = motion; break;
            }
        }
        return video;
    }

    private async ValueTask<InpaintFields?> ReadInpaintAsync(CancellationToken cancellationToken)
    {
        if (json.BeginObject("must be an object ({ \"image\": \"inputs/scene.png\", \"mask\": \"inputs/mask.png\", \"strength\": 0.8 })") is not { } scope)
            return null;
        var inpaint = new InpaintFields();
        while (await json.NextFieldAsync(scope, ManifestFieldSets.Inpaint, cancellationToken).ConfigureAwait(false) is { } name)
        {
            switch (name)
            {
                case "image": inpaint.Image = ReadInputPath(); break;
                case "mask": inpaint.Mask = ReadInputPath(); break;
                case "strength": if (json.TryGetNumber(ManifestRules.Strength, out var strength)) inpaint.Strength = strength; break;
            }
        }
        if (!json.Had(scope, "image")) json.Report("missing required field 'image' (the picture to repaint, a PNG or JPEG beside the manifest)");
        if (!json.Had(scope, "mask")) json.Report("missing required field 'mask' (a PNG or JPEG; white marks what to repaint)");
        return inpaint;
    }

    private string? ReadInputPath()
    {
        if (!json.TryGetString(out var path)) return null;
        if (ManifestRules.CheckInputPath(path) is { } problem)
        {
            json.Report($"{StrictJsonReader.Quote(path)} {problem}");
            return null;
        }
        return path;
    }

    private void ReadRenderField(string name, RenderFields target)
    {
        switch (name)
        {
            case "width":
                if (json.TryGetInteger(ManifestRules.Size, out var width)) target.Width = (int)width;
                else target.SizeInvalid = true;
                break;
            case "height":
                if (json.TryGetInteger(ManifestRules.Size, out var height)) target.Height = (int)height;
                else target.SizeInvalid = true;
                break;
            case "steps":
                if (json.TryGetInteger(ManifestRules.Steps, out var steps)) target.Steps = (int)steps;
                break;
            case "guidanceScale":
                if (json.TryGetNumber(ManifestRules.GuidanceScale, out var guidance)) target.GuidanceScale = guidance;
                break;
            case "seed":
                if (json.TryGetInteger(ManifestRules.Seed, out var seed)) target.Seed = seed;
                break;
            case "sampler":
                target.Sampler = ReadChoice(ManifestRules.Samplers);
                break;
            case "quantization":
                target.Quantization = ReadChoice(ManifestRules.Quantizations);
                break;
            case "negativePrompt":
                if (json.TryGetString(out var negative))
                {
                    if (rules.CheckPrompt(negative, allowEmpty: true) is { } problem) json.Report(problem);
                    else target.NegativePrompt = negative;
                }
                break;
        }
    }

    private string? ReadChoice(IReadOnlyList<string> allowed)
    {
        if (!json.TryGetString(out var value, $"must be one of {string.Join(", ", allowed.Select(a => $"'{a}'"))}")) return null;
        if (allowed.Contains(value)) return value;
        json.Report(ManifestRules.OneOf(allowed, value));
        return null;
    }
}
