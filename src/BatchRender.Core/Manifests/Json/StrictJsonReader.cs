using System.Globalization;
using System.Text.Json;

namespace BatchRender.Core.Manifests.Json;

/// <summary>The fields one kind of object allows: names, which are required, and hints for names that belong elsewhere.</summary>
internal sealed class FieldSet
{
    private readonly HashSet<string> _names;
    private readonly HashSet<string> _required;
    private readonly Dictionary<string, string> _hints;

    public FieldSet(string what, IEnumerable<string> names, IEnumerable<string>? required = null, IReadOnlyDictionary<string, string>? hints = null)
    {
        What = what;
        Names = names.ToArray();
        _names = new HashSet<string>(Names, StringComparer.Ordinal);
        _required = new HashSet<string>(required ?? [], StringComparer.Ordinal);
        _hints = new Dictionary<string, string>(hints ?? new Dictionary<string, string>(), StringComparer.Ordinal);
    }

    /// <summary>What the object is, for messages ("an item", "the manifest").</summary>
    public string What { get; }
    public IReadOnlyList<string> Names { get; }
    public bool Contains(string name) => _names.Contains(name);
    public bool IsRequired(string name) => _required.Contains(name);

    public string DescribeUnknown(string name)
    {
        var shown = name.Length > 60 ? name[..60] + "…" : name;
        if (_hints.TryGetValue(name, out var hint)) return $"unknown field '{shown}' in {What}: {hint}";
        if (Suggest(name) is { } close)
            return string.Equals(close, name, StringComparison.OrdinalIgnoreCase)
                ? $"unknown field '{shown}' in {What} (did you mean '{close}'? field names are case-sensitive)"
                : $"unknown field '{shown}' in {What} (did you mean '{close}'?)";
        return $"unknown field '{shown}' in {What}; its fields are: {string.Join(", ", Names)}";
    }

    /// <summary>The closest known name within a small edit distance, ignoring case; null when nothing is close.</summary>
    public string? Suggest(string name) => Closest(name, Names);

    public static string? Closest(string name, IEnumerable<string> candidates)
    {
        if (name.Length > 64) return null;
        string? best = null;
        var bestDistance = int.MaxValue;
        foreach (var candidate in candidates)
        {
            var distance = EditDistance(name.ToLowerInvariant(), candidate.ToLowerInvariant());
            var allowed = Math.Max(1, Math.Min(name.Length, candidate.Length) / 3);
            if (distance <= allowed && distance < bestDistance) (best, bestDistance) = (candidate, distance);
        }
        return best;
    }

    /// <summary>Optimal string alignment distance (Levenshtein plus adjacent transpositions: "widht" is one edit from "width").</summary>
    internal static int EditDistance(string a, string b)
    {
        var d = new int[a.Length + 1, b.Length + 1];
        for (var i = 0; i <= a.Length; i++) d[i, 0] = i;
        for (var j = 0; j <= b.Length; j++) d[0, j] = j;
        for (var i = 1; i <= a.Length; i++)
        for (var j = 1; j <= b.Length; j++)
        {
            var cost = a[i - 1] == b[j - 1] ? 0 : 1;
            d[i, j] = Math.Min(Math.Min(d[i - 1, j] + 1, d[i, j - 1] + 1), d[i - 1, j - 1] + cost);
            if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1]) d[i, j] = Math.Min(d[i, j], d[i - 2, j - 2] + 1);
        }
        return d[a.Length, b.Length];
    }
}

/// <summary>A whole-number rule: range, step and the sentence that states it ("must be a whole number from 1 to 1000").</summary>
internal sealed record IntegerRule(string Text, long Min, long Max, long MultipleOf = 1)
{
    public bool Allows(long value) => value >= Min && value <= Max && value % MultipleOf == 0;
}

/// <summary>A number rule: range (optionally excluding its minimum) and the sentence that states it.</summary>
internal sealed record NumberRule(string Text, double Min, double Max, bool MinExclusive = false)
{
    public bool Allows(double value) => double.IsFinite(value) && (MinExclusive ? value > Min : value >= Min) && value <= Max;
}

/// <summary>An open object or array, by depth (the reader keeps its state).</summary>
internal readonly record struct JsonScope(int Depth);

/// <summary>
/// Strict, schema-driven reading over <see cref="JsonTokenStream"/>: it walks objects field by field, reporting duplicate
/// keys, unknown fields (with a "did you mean"), nulls and wrong types with their JSON paths, and skips what it cannot use,
/// so one pass finds every problem. Shared by manifests and schedules.
/// </summary>
internal sealed class StrictJsonReader
{
    private readonly IProblemSink _problems;
    // Per open container depth: keys seen (objects) and whether the last value handed out is a container that may
    // still need skipping.
    private readonly List<HashSet<string>> _seen = [];
    private readonly List<bool> _pendingContainer = [];

    public StrictJsonReader(JsonTokenStream tokens, IProblemSink problems)
    {
        Tokens = tokens;
        _problems = problems;
    }

    public JsonTokenStream Tokens { get; }
    public JsonTokenType TokenType => Tokens.TokenType;
    public string Path => Tokens.CurrentPath;

    public void Report(string message) => _problems.Report(Tokens.CurrentPath, message);
    public void Report(string path, string message) => _problems.Report(path, message);

    /// <summary>Reads the document's first token (its root value).</summary>
    public ValueTask<bool> ReadRootAsync(CancellationToken cancellationToken) => Tokens.ReadAsync(cancellationToken);

    /// <summary>Reads what is left after the root value: only whitespace may follow (anything else is a format error).</summary>
    public async ValueTask ReadToEndAsync(CancellationToken cancellationToken)
    {
        while (await Tokens.ReadAsync(cancellationToken).ConfigureAwait(false)) { }
    }

    /// <summary>Skips the current value: a scalar is already read; an object or array is read to its end.</summary>
    public async ValueTask SkipValueAsync(CancellationToken cancellationToken)
    {
        if (Tokens.TokenType is not (JsonTokenType.StartObject or JsonTokenType.StartArray)) return;
        var depth = Tokens.Depth;
        while (await Tokens.ReadAsync(cancellationToken).ConfigureAwait(false))
            if (Tokens.Depth == depth && Tokens.TokenType is JsonTokenType.EndObject or JsonTokenType.EndArray) return;
    }

    /// <summary>Opens the current value as an object, or reports that it is not one (and returns null; the caller
    /// moves on and the value is skipped).</summary>
    public JsonScope? BeginObject(string expected = "must be an object ({ ... })")
    {
        if (Tokens.TokenType != JsonTokenType.StartObject)
        {
            Report($"{expected}, got {Describe()}");
            return null;
        }
        var depth = Tokens.Depth;
        while (_seen.Count <= depth + 1) { _seen.Add(new HashSet<string>(StringComparer.Ordinal)); _pendingContainer.Add(false); }
        _seen[depth].Clear();
        _pendingContainer[depth] = false;
        return new JsonScope(depth);
    }

    public JsonScope? BeginArray(string expected)
    {
        if (Tokens.TokenType != JsonTokenType.StartArray)
        {
            Report($"{expected}, got {Describe()}");
            return null;
        }
        var depth = Tokens.Depth;
        while (_pendingContainer.Count <= depth + 1) { _seen.Add(new HashSet<string>(StringComparer.Ordinal)); _pendingContainer.Add(false); }
        _pendingContainer[depth] = false;
        return new JsonScope(depth);
    }

    /// <summary>
    /// Moves to the next usable field of an object: returns its name with the reader on its value, or null at the end of
    /// the object (the reader then sits on its closing brace, so <see cref="Path"/> names the object). Duplicate keys,
    /// unknown fields and nulls are reported and skipped here.
    /// </summary>
    public async ValueTask<string?> NextFieldAsync(JsonScope scope, FieldSet fields, CancellationToken cancellationToken)
    {
        var d = scope.Depth;
        while (true)
        {
            await SkipPendingAsync(d, cancellationToken).ConfigureAwait(false);
            await ReadRequiredAsync(cancellationToken).ConfigureAwait(false);
            if (Tokens.TokenType == JsonTokenType.EndObject) return null;
            var name = Tokens.String!;
            var duplicate = !_seen[d].Add(name);
            await ReadRequiredAsync(cancellationToken).ConfigureAwait(false);
            _pendingContainer[d] = Tokens.TokenType is JsonTokenType.StartObject or JsonTokenType.StartArray;
            if (duplicate)
                Report($"duplicate key '{name}': a key may appear only once in an object (the earlier value would be silently lost)");
            else if (!fields.Contains(name))
                Report(fields.DescribeUnknown(name));
            else if (Tokens.TokenType == JsonTokenType.Null)
                Report(fields.IsRequired(name) ? "must not be null" : $"must not be null; leave '{name}' out to use the default");
            else
                return name;
        }
    }

    /// <summary>True when the object just finished had the key (even with a null or duplicate value).</summary>
    public bool Had(JsonScope scope, string name) => _seen[scope.Depth].Contains(name);

    /// <summary>Moves to the next element of an array (the reader on it); false at the end of the array.</summary>
    public async ValueTask<bool> NextElementAsync(JsonScope scope, CancellationToken cancellationToken)
    {
        await SkipPendingAsync(scope.Depth, cancellationToken).ConfigureAwait(false);
        await ReadRequiredAsync(cancellationToken).ConfigureAwait(false);
        if (Tokens.TokenType == JsonTokenType.EndArray) return false;
        _pendingContainer[scope.Depth] = Tokens.TokenType is JsonTokenType.StartObject or JsonTokenType.StartArray;
        return true;
    }

    private async ValueTask SkipPendingAsync(int depth, CancellationToken cancellationToken)
    {
        if (!_pendingContainer[depth]) return;
        _pendingContainer[depth] = false;
        // The value handed out sits at depth + 1; it is done when its closing token at that depth has been read.
        while (!(Tokens.Depth == depth + 1 && Tokens.TokenType is JsonTokenType.EndObject or JsonTokenType.EndArray))
            await ReadRequiredAsync(cancellationToken).ConfigureAwait(false);
    }

    private async ValueTask ReadRequiredAsync(CancellationToken cancellationToken)
    {
        // The reader itself rejects a document that ends early; this only guards the walk.
        if (!await Tokens.ReadAsync(cancellationToken).ConfigureAwait(false))
            throw Tokens.FormatError(Path, "the JSON ends before every object and array is closed (is the file truncated?)");
    }

    public bool TryGetString(out string value, string expected = "must be a string")
    {
        if (Tokens.TokenType == JsonTokenType.String)
        {
            value = Tokens.String!;
            return true;
        }
        Report($"{expected}, got {Describe()}");
        value = "";
        return false;
    }

    public bool TryGetInteger(IntegerRule rule, out long value)
    {
        value = 0;
        if (Tokens.TokenType != JsonTokenType.Number || Tokens.NumberKind != JsonNumberKind.Integer || !rule.Allows(Tokens.Int64))
        {
            Report($"{rule.Text}, got {Describe()}");
            return false;
        }
        value = Tokens.Int64;
        return true;
    }

    public bool TryGetNumber(NumberRule rule, out double value)
    {
        value = 0;
        if (Tokens.TokenType != JsonTokenType.Number || Tokens.NumberKind == JsonNumberKind.Overflow || !rule.Allows(Tokens.Double))
        {
            Report($"{rule.Text}, got {Describe()}");
            return false;
        }
        value = Tokens.Double;
        return true;
    }

    /// <summary>The current value in words: <c>a string ("abc")</c>, <c>1e400 (too large to be a number here)</c>, <c>an object</c>.</summary>
    public string Describe() => Tokens.TokenType switch
    {
        JsonTokenType.String => $"a string ({Quote(Tokens.String!)})",
        JsonTokenType.Number => Tokens.NumberKind switch
        {
            JsonNumberKind.Fraction => Tokens.NumberText,
            JsonNumberKind.Overflow => $"{Tokens.NumberText} (beyond the range of a number)",
            JsonNumberKind.HugeInteger => $"{Tokens.NumberText} (too large)",
            _ => Tokens.Int64.ToString(CultureInfo.InvariantCulture),
        },
        JsonTokenType.True => "true",
        JsonTokenType.False => "false",
        JsonTokenType.Null => "null",
        JsonTokenType.StartObject => "an object",
        JsonTokenType.StartArray => "an array",
        _ => Tokens.TokenType.ToString(),
    };

    /// <summary>A string for a message: JSON-quoted (so control characters show as escapes) and cut at 60 characters.</summary>
    public static string Quote(string s) => JsonSerializer.Serialize(s.Length > 60 ? s[..60] + "…" : s, ReadableJson);

    /// <summary>Escapes only what JSON must (quotes, backslashes, control characters), so Chinese text stays readable.</summary>
    internal static readonly JsonSerializerOptions ReadableJson = new() { Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping };
}
