using System.Text.Json.Nodes;

namespace BatchRender.Infra.Tests;

/// <summary>
/// Renders an infra/k8s overlay the way azd deploys it: the overlay's .env is written from azure.yaml's
/// k8s.kustomize.env keys (values made up here, as a real deployment takes them from the Bicep outputs), then
/// `kubectl kustomize` builds it. The copy lives in a temporary folder; the working tree is not touched.
/// </summary>
internal sealed class RenderedOverlay
{
    public const string WorkerDeployment = "batchrender-worker";

    private static readonly Dictionary<string, Lazy<Task<RenderedOverlay>>> Cache = new()
    {
        ["dev"] = new(() => RenderAsync("dev")),
        ["prod"] = new(() => RenderAsync("prod")),
    };

    public static readonly string[] Overlays = ["dev", "prod"];

    public string Name { get; }
    public IReadOnlyList<JsonObject> Resources { get; }
    public IReadOnlyDictionary<string, string> EnvFile { get; }

    private RenderedOverlay(string name, IReadOnlyList<JsonObject> resources, IReadOnlyDictionary<string, string> envFile)
    {
        Name = name;
        Resources = resources;
        EnvFile = envFile;
    }

    public static Task<RenderedOverlay> GetAsync(string overlay) => Cache[overlay].Value;

    /// <summary>Sample .env values: distinct, recognisable, shaped like the real ones.</summary>
    public static string SampleValue(string key) => key switch
    {
        _ when key.EndsWith("ServiceUri", StringComparison.Ordinal) =>
            $"https://stsample.{key["Storage__".Length..^"ServiceUri".Length]}.core.windows.net/",
        "ServiceBus__fullyQualifiedNamespace" => "sb-sample.servicebus.windows.net",
        _ => $"sample-{key.ToLowerInvariant().Replace('_', '-')}",
    };

    public JsonObject Single(string kind, string? namePrefix = null)
    {
        var matches = Resources.Where(r => r["kind"].Str() == kind
            && (namePrefix is null || r["metadata"]!["name"].Str().StartsWith(namePrefix, StringComparison.Ordinal))).ToList();
        Assert.True(matches.Count == 1, $"overlay {Name}: expected one {kind} {namePrefix}, found {matches.Count}");
        return matches[0];
    }

    public JsonObject WorkerDeploymentResource => Single("Deployment", WorkerDeployment);

    public JsonObject WorkerContainer =>
        WorkerDeploymentResource["spec"]!["template"]!["spec"]!["containers"]!.AsArray()
            .Single(c => c!["name"].Str() == "worker")!.AsObject();

    /// <summary>A ConfigMap's data by its generator name (kustomize appends a content hash).</summary>
    public IReadOnlyDictionary<string, string> ConfigMapData(string name)
    {
        var map = Resources.Single(r => r["kind"].Str() == "ConfigMap"
            && (r["metadata"]!["name"].Str() == name || r["metadata"]!["name"].Str().StartsWith(name + "-", StringComparison.Ordinal)));
        return map["data"]!.AsObject().ToDictionary(p => p.Key, p => p.Value.Str());
    }

    public string ConfigMapFullName(string name) => Resources.Single(r => r["kind"].Str() == "ConfigMap"
        && r["metadata"]!["name"].Str().StartsWith(name + "-", StringComparison.Ordinal))["metadata"]!["name"].Str();

    private static async Task<RenderedOverlay> RenderAsync(string overlay)
    {
        var kubectl = ProcessRunner.Which("kubectl")
            ?? throw new InvalidOperationException("kubectl is not on PATH: the infra tests render infra/k8s with `kubectl kustomize`.");

        var azureYaml = Yaml.Parse(Repo.Read("azure.yaml"));
        var envKeys = azureYaml["services"]!["worker"]!["k8s"]!["kustomize"]!["env"]!.AsObject().Select(p => p.Key).ToList();
        var envFile = envKeys.ToDictionary(k => k, SampleValue);

        var temp = Directory.CreateTempSubdirectory("batchrender-k8s-");
        try
        {
            CopyDirectory(Repo.Path("infra", "k8s"), temp.FullName);
            var overlayDir = Path.Combine(temp.FullName, "overlays", overlay);
            await File.WriteAllLinesAsync(Path.Combine(overlayDir, ".env"), envFile.Select(p => $"{p.Key}={p.Value}"));
            var result = await ProcessRunner.RunAsync(kubectl, ["kustomize", overlayDir], temp.FullName, TimeSpan.FromMinutes(2));
            Assert.True(result.ExitCode == 0, result.Describe($"kubectl kustomize overlays/{overlay}"));
            return new RenderedOverlay(overlay, Yaml.ParseAll(result.StdOut), envFile);
        }
        finally
        {
            temp.Delete(recursive: true);
        }
    }

    private static void CopyDirectory(string from, string to)
    {
        foreach (var dir in Directory.EnumerateDirectories(from, "*", SearchOption.AllDirectories))
            Directory.CreateDirectory(Path.Combine(to, Path.GetRelativePath(from, dir)));
        foreach (var file in Directory.EnumerateFiles(from, "*", SearchOption.AllDirectories))
        {
            // A developer's own .env (written by azd) must not leak into the test.
            if (Path.GetFileName(file) == ".env") continue;
            File.Copy(file, Path.Combine(to, Path.GetRelativePath(from, file)));
        }
    }
}
