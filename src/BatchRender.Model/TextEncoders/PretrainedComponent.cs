using System.Text.Json;
using System.Text.Json.Nodes;
using BatchRender.Model.Loading;

namespace BatchRender.Model.TextEncoders;

/// <summary>Helpers shared by the FromPretrained / SavePretrained of the text encoders and the VAE.</summary>
internal static class PretrainedComponent
{
    /// <summary>Every tensor name in a component's weight files (headers only).</summary>
    public static HashSet<string> WeightKeys(string componentDirectory) =>
        DiffusersComponent.FindWeightFiles(componentDirectory)
            .SelectMany(f => SafetensorsFile.ReadHeader(f).Entries.Select(e => e.Name))
            .ToHashSet(StringComparer.Ordinal);

    /// <summary>A config record as a JSON object (its JsonPropertyName keys) plus fixed identification keys.</summary>
    public static JsonObject ToJson<T>(T config, params (string Key, JsonNode Value)[] extra)
    {
        var json = JsonSerializer.SerializeToNode(config)!.AsObject();
        foreach (var (key, value) in extra) json[key] = value;
        return json;
    }
}
