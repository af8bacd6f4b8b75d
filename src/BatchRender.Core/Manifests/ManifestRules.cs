using System.Globalization;
using System.Text;
using BatchRender.Core.Configuration;
using BatchRender.Core.Manifests.Json;
using Microsoft.Extensions.Configuration;

namespace BatchRender.Core.Manifests;

/// <summary>
/// What a manifest may contain here: the configured limits (<c>Limits</c>), the configured defaults (<c>Defaults</c>)
/// and the served models (the names under <c>Models</c>, with a model's own guidance scale where it has one). The
/// constructor checks the configured defaults against the same rules, so a misconfiguration fails at start-up rather
/// than in every job.
/// </summary>
public sealed class ManifestRules
{
    public const int SchemaVersion = 1;
    public static readonly IReadOnlyList<string> Samplers = ["ddpm", "ddim", "dpmsolver++"];
    public static readonly IReadOnlyList<string> Quantizations = ["none", "bf16", "int8-dynamic"];

    internal static readonly IntegerRule Size = new("must be a multiple of 16 between 64 and 2048", 64, 2048, 16);
    internal static readonly IntegerRule Steps = new("must be a whole number from 1 to 1000", 1, 1000);
    internal static readonly NumberRule GuidanceScale = new("must be a number from 0 to 30", 0, 30);
    internal static readonly IntegerRule Seed = new("must be a whole number from 0 to 9223372036854775807 (2^63-1)", 0, long.MaxValue);
    internal static readonly IntegerRule Fps = new("must be a whole number from 1 to 60", 1, 60);
    internal static readonly NumberRule MotionScale = new("must be a number from 0 to 10", 0, 10);
    internal static readonly NumberRule Strength = new("must be a number greater than 0 and at most 1", 0, 1, MinExclusive: true);
    internal static readonly IntegerRule SchemaVersionRule = new($"must be {SchemaVersion} (the only schema version there is)", SchemaVersion, SchemaVersion);

    public ManifestRules(LimitsOptions limits, RenderDefaultsOptions defaults, IReadOnlySet<string> models,
                         IReadOnlyDictionary<string, double>? modelGuidanceScales = null)
    {
        Limits = limits;
        Defaults = defaults;
        Models = models;
        ModelGuidanceScales = modelGuidanceScales ?? new Dictionary<string, double>();
        Frames = new IntegerRule($"must be a whole number from 2 to {limits.MaxFrames} (Limits:MaxFrames)", 2, limits.MaxFrames);
        var problems = CheckConfiguredDefaults().ToList();
        if (problems.Count > 0)
            throw new InvalidOperationException("The configured render defaults are invalid: " + string.Join("; ", problems));
    }

    /// <summary>
    /// The rules from configuration: <c>Limits</c>, <c>Defaults</c> and the names under <c>Models</c> (the same sections
    /// the workers read). Limits are checked against their [Range]s and the defaults against the manifest rules; either
    /// failing throws, naming the setting.
    /// </summary>
    public static ManifestRules FromConfiguration(IConfiguration configuration)
    {
        var limits = configuration.GetSection(ConfigSections.Limits).Get<LimitsOptions>() ?? new LimitsOptions();
        var results = new List<System.ComponentModel.DataAnnotations.ValidationResult>();
        if (!System.ComponentModel.DataAnnotations.Validator.TryValidateObject(limits, new(limits), results, validateAllProperties: true))
            throw new InvalidOperationException("The configured limits are invalid: " +
                                                string.Join("; ", results.Select(r => $"Limits:{string.Join(",", r.MemberNames)}: {r.ErrorMessage}")));
        var defaults = configuration.GetSection(ConfigSections.Defaults).Get<RenderDefaultsOptions>() ?? new RenderDefaultsOptions();
        return new ManifestRules(limits, defaults, ModelNames(configuration), ModelGuidanceScalesFrom(configuration));
    }

    /// <summary><c>Models:{name}:GuidanceScale</c> of the models that set one; a value that is no number throws, naming it.</summary>
    public static IReadOnlyDictionary<string, double> ModelGuidanceScalesFrom(IConfiguration configuration)
    {
        var scales = new Dictionary<string, double>(StringComparer.Ordinal);
        foreach (var model in configuration.GetSection(ConfigSections.Models).GetChildren())
        {
            var value = model[nameof(ModelEntryOptions.GuidanceScale)];
            if (value is null) continue;
            if (!double.TryParse(value, NumberStyles.Float, CultureInfo.InvariantCulture, out var scale))
                throw new InvalidOperationException($"The configured render defaults are invalid: Models:{model.Key}:GuidanceScale = '{value}' {GuidanceScale.Text}");
            scales[model.Key] = scale;
        }
        return scales;
    }

    /// <summary>The served models: the names under <c>Models</c> (ingest and workers read the same section).</summary>
    public static IReadOnlySet<string> ModelNames(IConfiguration configuration) =>
        configuration.GetSection(ConfigSections.Models).GetChildren().Select(model => model.Key).ToHashSet(StringComparer.Ordinal);

    public LimitsOptions Limits { get; }
    public RenderDefaultsOptions Defaults { get; }
    public IReadOnlySet<string> Models { get; }
    /// <summary>The models' own guidance scales (<see cref="ModelEntryOptions.GuidanceScale"/>), by model name.</summary>
    public IReadOnlyDictionary<string, double> ModelGuidanceScales { get; }
    internal IntegerRule Frames { get; }

    /// <summary>The guidance scale of an item of <paramref name="model"/> that names none, nor does its manifest: the
    /// model's own (<c>Models:{model}:GuidanceScale</c>), else <c>Defaults:GuidanceScale</c>.</summary>
    public double DefaultGuidanceScale(string model) =>
        ModelGuidanceScales.TryGetValue(model, out var scale) ? scale : Defaults.GuidanceScale;

    /// <summary>The most bytes one JSON token may take: the longest prompt with every character \u-escaped, and room.</summary>
    internal int MaxTokenBytes => (int)Math.Min(int.MaxValue / 2, Math.Max(1L << 20, Limits.MaxPromptLength * 12L + 4096));

    private IEnumerable<string> CheckConfiguredDefaults()
    {
        if (!Size.Allows(Defaults.Width)) yield return $"Defaults:Width = {Defaults.Width} {Size.Text}";
        if (!Size.Allows(Defaults.Height)) yield return $"Defaults:Height = {Defaults.Height} {Size.Text}";
        if (!Steps.Allows(Defaults.Steps)) yield return $"Defaults:Steps = {Defaults.Steps} {Steps.Text}";
        if (!GuidanceScale.Allows(Defaults.GuidanceScale)) yield return $"Defaults:GuidanceScale = {Defaults.GuidanceScale} {GuidanceScale.Text}";
        if (!Samplers.Contains(Defaults.Sampler)) yield return $"Defaults:Sampler = '{Defaults.Sampler}' must be one of {string.Join(", ", Samplers)}";
        if (!Quantizations.Contains(Defaults.Quantization)) yield return $"Defaults:Quantization = '{Defaults.Quantization}' must be one of {string.Join(", ", Quantizations)}";
        if (!Frames.Allows(Defaults.VideoFrames)) yield return $"Defaults:VideoFrames = {Defaults.VideoFrames} {Frames.Text}";
        if (!Fps.Allows(Defaults.VideoFps)) yield return $"Defaults:VideoFps = {Defaults.VideoFps} {Fps.Text}";
        if (!MotionScale.Allows(Defaults.VideoMotionScale)) yield return $"Defaults:VideoMotionScale = {Defaults.VideoMotionScale} {MotionScale.Text}";
        if (!Strength.Allows(Defaults.InpaintStrength)) yield return $"Defaults:InpaintStrength = {Defaults.InpaintStrength} {Strength.Text}";
        if (CheckPrompt(Defaults.NegativePrompt, allowEmpty: true) is { } p) yield return $"Defaults:NegativePrompt {p}";
        if (PixelProblem(Defaults.Width, Defaults.Height) is { } px) yield return $"Defaults:Width x Defaults:Height {px}";
        foreach (var (model, scale) in ModelGuidanceScales.OrderBy(m => m.Key, StringComparer.Ordinal))
        {
            if (!Models.Contains(model)) yield return $"Models:{model}:GuidanceScale is set for a model that is not configured ({ModelList})";
            if (!GuidanceScale.Allows(scale)) yield return $"Models:{model}:GuidanceScale = {scale.ToString(CultureInfo.InvariantCulture)} {GuidanceScale.Text}";
        }
        if (!Models.Contains(Defaults.Model)) yield return $"Defaults:Model = '{Defaults.Model}' is not one of the configured Models ({ModelList})";
    }

    internal string ModelList => Models.Count == 0 ? "none configured" : string.Join(", ", Models.Order(StringComparer.Ordinal));

    /// <summary>Null when width x height is within <see cref="LimitsOptions.MaxPixels"/>; else the sentence saying by how much not.</summary>
    internal string? PixelProblem(long width, long height) => width * height <= Limits.MaxPixels
        ? null
        : string.Create(CultureInfo.InvariantCulture,
            $"is {width} x {height} = {width * height:N0} pixels, over the limit of {Limits.MaxPixels:N0} pixels (Limits:MaxPixels)");

    /// <summary>
    /// Checks prompt text: not empty after trimming (unless <paramref name="allowEmpty"/>), at most
    /// <see cref="LimitsOptions.MaxPromptLength"/> characters (Unicode scalar values, so a Chinese character or an emoji
    /// counts once), and free of control characters other than tab, line feed and carriage return (C0, DEL and C1 are
    /// refused: they are invisible in a gallery and break logs and sidecars).
    /// </summary>
    internal string? CheckPrompt(string text, bool allowEmpty)
    {
        if (!allowEmpty && text.AsSpan().Trim().IsEmpty) return "must not be empty or only whitespace";
        var length = 0;
        var position = 0;
        foreach (var rune in text.EnumerateRunes())
        {
            position++;
            length++;
            var v = rune.Value;
            var control = (v < 0x20 && v is not ('\t' or '\n' or '\r')) || (v >= 0x7F && v <= 0x9F);
            if (control)
                return $"contains the control character U+{v:X4} at character {position}; only tab, line feed and carriage return are allowed";
        }
        return length > Limits.MaxPromptLength
            ? string.Create(CultureInfo.InvariantCulture, $"is {length:N0} characters long; the limit is {Limits.MaxPromptLength:N0} (Limits:MaxPromptLength)")
            : null;
    }

    /// <summary>
    /// Checks an inpaint input path: relative to the manifest's folder, '/'-separated, with plain segments only. Refuses
    /// absolute paths, URLs and drive letters (anything with ':'), backslashes, '..', '.' and empty segments, and control
    /// characters, so the path can only name a file at or below the manifest's folder.
    /// </summary>
    public static string? CheckInputPath(string path) =>
        CheckRelativePath(path) is { } problem ? problem + "; give a path relative to the manifest's folder, like 'inputs/scene.png'" : null;

    /// <summary>The rules of <see cref="CheckInputPath"/>, without the advice (schedules name blobs with them too).</summary>
    internal static string? CheckRelativePath(string path)
    {
        if (path.Length == 0) return "must not be empty";
        if (path.Length > 1024) return $"is {path.Length} characters long (at most 1024)";
        if (path.Any(char.IsControl)) return "contains a control character";
        if (path.Contains("://", StringComparison.Ordinal)) return "is a URL";
        if (path.Contains('\\')) return "contains a backslash ('\\'), so use '/' between folders";
        if (path.Contains(':')) return "contains ':' (a drive letter or URL scheme)";
        if (path.StartsWith('/')) return "is an absolute path";
        foreach (var segment in path.Split('/'))
        {
            if (segment == "..") return "contains '..', which would leave the manifest's folder";
            if (segment == ".") return "contains a '.' segment";
            if (segment.Length == 0) return "contains an empty segment ('//' or a trailing '/')";
        }
        return null;
    }

    /// <summary>"must be one of 'ddpm', 'ddim', 'dpmsolver++'" plus a "did you mean" when the value is close to one.</summary>
    internal static string OneOf(IReadOnlyList<string> allowed, string got)
    {
        var sb = new StringBuilder("must be one of ");
        sb.AppendJoin(", ", allowed.Select(a => $"'{a}'"));
        sb.Append(", got ").Append(StrictJsonReader.Quote(got));
        if (FieldSet.Closest(got, allowed) is { } close) sb.Append($" (did you mean '{close}'?)");
        return sb.ToString();
    }
}
