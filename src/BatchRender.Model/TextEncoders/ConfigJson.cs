using System.Text.Json;
using System.Text.Json.Serialization;

namespace BatchRender.Model.TextEncoders;

/// <summary>Reads a Hugging Face / diffusers config.json into a config record; errors name the file and the field.</summary>
internal static class ConfigJson
{
    private static readonly JsonSerializerOptions Options = new()
    {
        ReadCommentHandling = JsonCommentHandling.Skip,
        AllowTrailingCommas = true,
        NumberHandling = JsonNumberHandling.AllowReadingFromString,
    };

    public static T Parse<T>(string json, string source) where T : class
    {
        try
        {
            return JsonSerializer.Deserialize<T>(json, Options) ?? throw new InvalidDataException($"{source}: the file holds null, expected a JSON object");
        }
        catch (JsonException e)
        {
            throw new InvalidDataException($"{source}: invalid value at {e.Path ?? "$"} (line {e.LineNumber + 1}): {e.Message}", e);
        }
    }

    /// <summary>Loads config.json from a file path or from the folder holding it.</summary>
    public static T Load<T>(string path) where T : class
    {
        if (Directory.Exists(path)) path = Path.Combine(path, "config.json");
        if (!File.Exists(path)) throw new FileNotFoundException($"config not found: {path}", path);
        return Parse<T>(File.ReadAllText(path), path);
    }

    public static void Require(bool condition, string source, string field, string problem)
    {
        if (!condition) throw new InvalidDataException($"{source}: '{field}' {problem}");
    }
}
