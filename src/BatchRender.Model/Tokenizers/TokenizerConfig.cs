using System.Text.Json;

namespace BatchRender.Model.Tokenizers;

/// <summary>
/// The parts of a Hugging Face tokenizer folder's tokenizer_config.json (and special_tokens_map.json) that change ids:
/// case and accent handling, CJK splitting, special tokens and model_max_length. Special tokens may be written as a
/// string or as an AddedToken object ({"content": "[CLS]", ...}); special_tokens_map.json overrides tokenizer_config.json.
/// </summary>
public sealed record TokenizerConfig
{
    public bool? DoLowerCase { get; init; }
    public bool? TokenizeChineseChars { get; init; }
    /// <summary>null: strip accents exactly when lower-casing (HF BasicTokenizer's rule).</summary>
    public bool? StripAccents { get; init; }
    /// <summary>Null when absent or a "no limit" placeholder (HF writes 1e30 for unlimited tokenizers).</summary>
    public int? ModelMaxLength { get; init; }
    public string? ClsToken { get; init; }
    public string? SepToken { get; init; }
    public string? PadToken { get; init; }
    public string? UnkToken { get; init; }
    public string? MaskToken { get; init; }
    public string? EosToken { get; init; }

    public static readonly TokenizerConfig Empty = new();

    /// <summary>Reads tokenizer_config.json and special_tokens_map.json from a folder; missing files mean defaults.</summary>
    public static TokenizerConfig Load(string directory)
    {
        var config = Empty;
        foreach (var name in new[] { "tokenizer_config.json", "special_tokens_map.json" })
        {
            var path = Path.Combine(directory, name);
            if (File.Exists(path)) config = config.Merge(File.ReadAllText(path), path);
        }
        return config;
    }

    /// <summary>Applies the keys present in one JSON file over this config.</summary>
    public TokenizerConfig Merge(string json, string source)
    {
        JsonDocument doc;
        try { doc = JsonDocument.Parse(json, new JsonDocumentOptions { AllowTrailingCommas = true, CommentHandling = JsonCommentHandling.Skip }); }
        catch (JsonException e) { throw new InvalidDataException($"{source}: invalid JSON (line {e.LineNumber + 1}): {e.Message}", e); }
        using (doc)
        {
            var root = doc.RootElement;
            if (root.ValueKind != JsonValueKind.Object) throw new InvalidDataException($"{source}: expected a JSON object");
            return this with
            {
                DoLowerCase = Bool(root, "do_lower_case", source) ?? DoLowerCase,
                TokenizeChineseChars = Bool(root, "tokenize_chinese_chars", source) ?? TokenizeChineseChars,
                StripAccents = root.TryGetProperty("strip_accents", out _) ? Bool(root, "strip_accents", source) : StripAccents,
                ModelMaxLength = MaxLength(root, source) ?? ModelMaxLength,
                ClsToken = Token(root, "cls_token", source) ?? ClsToken,
                SepToken = Token(root, "sep_token", source) ?? SepToken,
                PadToken = Token(root, "pad_token", source) ?? PadToken,
                UnkToken = Token(root, "unk_token", source) ?? UnkToken,
                MaskToken = Token(root, "mask_token", source) ?? MaskToken,
                EosToken = Token(root, "eos_token", source) ?? EosToken,
            };
        }
    }

    private static bool? Bool(JsonElement root, string key, string source) =>
        !root.TryGetProperty(key, out var v) ? null : v.ValueKind switch
        {
            JsonValueKind.True => true,
            JsonValueKind.False => false,
            JsonValueKind.Null => null,
            _ => throw new InvalidDataException($"{source}: '{key}' must be true, false or null, got {v.ValueKind}"),
        };

    private static int? MaxLength(JsonElement root, string source)
    {
        if (!root.TryGetProperty("model_max_length", out var v) || v.ValueKind == JsonValueKind.Null) return null;
        if (v.ValueKind != JsonValueKind.Number || !v.TryGetDouble(out var d) || d < 1)
            throw new InvalidDataException($"{source}: 'model_max_length' must be a positive number, got {v}");
        return d > 1_000_000 ? null : (int)d;
    }

    private static string? Token(JsonElement root, string key, string source)
    {
        if (!root.TryGetProperty(key, out var v)) return null;
        return v.ValueKind switch
        {
            JsonValueKind.String => v.GetString(),
            JsonValueKind.Object when v.TryGetProperty("content", out var c) && c.ValueKind == JsonValueKind.String => c.GetString(),
            JsonValueKind.Null => null,
            _ => throw new InvalidDataException($"{source}: '{key}' must be a string or an object with \"content\", got {v.ValueKind}"),
        };
    }
}
