namespace BatchRender.Cli.Tests.Infrastructure;

/// <summary>Small manifests written to a test's folder.</summary>
public static class Manifests
{
    public static string Write(string directory, string json, string name = "manifest.json")
    {
        Directory.CreateDirectory(directory);
        var path = Path.Combine(directory, name);
        File.WriteAllText(path, json);
        return path;
    }

    public static string Images(string jobId, int count, int steps = 2) => $$"""
        {
          "schemaVersion": 1,
          "jobId": "{{jobId}}",
          "model": "demo",
          "defaults": { "width": 64, "height": 64, "steps": {{steps}}, "guidanceScale": 4.0, "sampler": "ddim", "quantization": "none" },
          "items": [ {{string.Join(",\n", Enumerable.Range(0, count).Select(i => $$"""{ "id": "item-{{i:D3}}", "prompt": "a red star {{i}}", "seed": {{i + 1}} }"""))}} ]
        }
        """;

    /// <summary>Two problems: a width that is not a multiple of 16, and an unknown field.</summary>
    public const string Invalid = """
        {
          "schemaVersion": 1,
          "jobId": "broken-job",
          "items": [ { "id": "a", "prompt": "x", "width": 100 }, { "id": "b", "prompt": "y", "colour": "red" } ]
        }
        """;
}
