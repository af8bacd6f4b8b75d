using System.Text.Json.Nodes;
using YamlDotNet.Core;
using YamlDotNet.Core.Events;
using YamlDotNet.Serialization;

namespace BatchRender.Infra.Tests;

/// <summary>YAML documents as JSON nodes (every scalar is a string, as YAML left it).</summary>
internal static class Yaml
{
    private static readonly IDeserializer Deserializer = new DeserializerBuilder().Build();
    private static readonly ISerializer ToJson = new SerializerBuilder().JsonCompatible().Build();

    public static List<JsonObject> ParseAll(string text)
    {
        var parser = new Parser(new StringReader(text));
        parser.Consume<StreamStart>();
        var documents = new List<JsonObject>();
        while (parser.Accept<DocumentStart>(out _))
        {
            var graph = Deserializer.Deserialize<object?>(parser);
            if (graph is null) continue;
            documents.Add(JsonNode.Parse(ToJson.Serialize(graph))!.AsObject());
        }
        return documents;
    }

    public static JsonObject Parse(string text) => ParseAll(text).Single();

    public static string Str(this JsonNode? node) => node?.GetValue<string>()
        ?? throw new KeyNotFoundException("missing value");
}
