using System.Reflection;
using System.Text.Json.Nodes;
using System.Text.RegularExpressions;

namespace BatchRender.Infra.Tests;

/// <summary>One run of the bicep CLI (restored from the Azure.Bicep.CommandLine.linux-x64 package).</summary>
internal sealed record BicepRun(string Command, string File, ProcessResult Result)
{
    // Diagnostics look like: /path/main.bicep(12,3) : Warning no-unused-params: ...
    private static readonly Regex Diagnostic = new(@"^\S.*\(\d+,\d+\) : (Error|Warning|Info) ", RegexOptions.Multiline);

    public IReadOnlyList<string> Diagnostics { get; } =
        Diagnostic.Matches(Result.StdErr + "\n" + Result.StdOut).Select(m => m.Value.Trim()).ToList();

    public string Describe() => Result.Describe($"bicep {Command} {File}");
}

/// <summary>Compiles and lints bicep/ once per test run (the runs go in parallel; each takes a few seconds).</summary>
internal static class Bicep
{
    public static readonly string[] ParamFiles = ["bicep/main.bicepparam", "bicep/env/dev.bicepparam", "bicep/env/prod.bicepparam"];
    public const string MainFile = "bicep/main.bicep";

    private static readonly Lazy<Task<BicepResults>> Results = new(RunAllAsync);

    public static Task<BicepResults> GetAsync() => Results.Value;

    public static string CliPath
    {
        get
        {
            var path = typeof(Bicep).Assembly.GetCustomAttributes<AssemblyMetadataAttribute>()
                .FirstOrDefault(a => a.Key == "BicepPath")?.Value;
            if (string.IsNullOrEmpty(path))
                throw new InvalidOperationException("BicepPath is not set: is Azure.Bicep.CommandLine.linux-x64 referenced?");
            path = path.Replace('\\', '/');
            if (!File.Exists(path))
                throw new FileNotFoundException($"bicep CLI not found at {path} (restore the test project)", path);
            return path;
        }
    }

    private static async Task<BicepResults> RunAllAsync()
    {
        var cli = CliPath;
        Task<BicepRun> Run(string command, string file, params string[] extra) => Task.Run(async () =>
            new BicepRun(command, file,
                await ProcessRunner.RunAsync(cli, [command, Repo.Path(file), .. extra], Repo.Root, TimeSpan.FromMinutes(3))));

        var build = Run("build", MainFile, "--stdout");
        var buildParams = ParamFiles.Select(f => Run("build-params", f, "--stdout")).ToList();
        // `lint` of main.bicep covers its modules; build-params reports the parameter files' own diagnostics.
        var lints = new[] { MainFile }.Select(f => Run("lint", f)).ToList();
        var snapshots = SnapshotEnvironments.Select(env => SnapshotAsync(cli, env)).ToList();
        await Task.WhenAll([build, .. buildParams, .. lints]);

        return new BicepResults(
            build.Result,
            buildParams.Select(t => t.Result).ToList(),
            lints.Select(t => t.Result).ToList(),
            SnapshotEnvironments.Zip(await Task.WhenAll(snapshots)).ToDictionary(p => p.First, p => p.Second));
    }

    /// <summary>Environments whose deployment is predicted with `bicep snapshot` (bicep/env/{name}.bicepparam).</summary>
    public static readonly string[] SnapshotEnvironments = ["dev", "prod"];

    /// <summary>
    /// `bicep snapshot` evaluates the template with an environment's parameters, offline, into the resources a
    /// deployment would create (names, properties, role assignment scopes), leaving only values known after
    /// deployment (module outputs, keys) as expressions. It writes next to the parameter file, so it runs on a copy.
    /// </summary>
    private static async Task<JsonObject> SnapshotAsync(string cli, string environment)
    {
        var temp = Directory.CreateTempSubdirectory("batchrender-bicep-");
        try
        {
            foreach (var file in Directory.EnumerateFiles(Repo.Path("bicep"), "*", SearchOption.AllDirectories))
            {
                var target = System.IO.Path.Combine(temp.FullName, System.IO.Path.GetRelativePath(Repo.Path("bicep"), file));
                Directory.CreateDirectory(System.IO.Path.GetDirectoryName(target)!);
                File.Copy(file, target);
            }
            var paramFile = System.IO.Path.Combine(temp.FullName, "env", $"{environment}.bicepparam");
            var result = await ProcessRunner.RunAsync(cli,
                ["snapshot", paramFile, "--mode", "overwrite", "--subscription-id", SampleSubscriptionId,
                 "--tenant-id", SampleTenantId, "--location", "eastus2"],
                temp.FullName, TimeSpan.FromMinutes(3));
            var snapshotFile = System.IO.Path.ChangeExtension(paramFile, ".snapshot.json");
            if (result.ExitCode != 0 || !File.Exists(snapshotFile))
                throw new InvalidOperationException(result.Describe($"bicep snapshot env/{environment}.bicepparam"));
            return JsonNode.Parse(await File.ReadAllTextAsync(snapshotFile))!.AsObject();
        }
        finally
        {
            temp.Delete(recursive: true);
        }
    }

    public const string SampleSubscriptionId = "00000000-0000-0000-0000-00000000000a";
    public const string SampleTenantId = "00000000-0000-0000-0000-00000000000b";
}

internal sealed class BicepResults(BicepRun build, IReadOnlyList<BicepRun> buildParams, IReadOnlyList<BicepRun> lints,
    IReadOnlyDictionary<string, JsonObject> snapshots)
{
    /// <summary>The predicted deployment of bicep/env/{environment}.bicepparam.</summary>
    public JsonObject Snapshot(string environment) => snapshots[environment];

    /// <summary>Predicted resources of a type in an environment.</summary>
    public IReadOnlyList<JsonObject> Predicted(string environment, string type) =>
        Snapshot(environment)["predictedResources"]!.AsArray().Select(r => r!.AsObject())
            .Where(r => r["type"]!.ToString() == type).ToList();

    public BicepRun Build { get; } = build;
    public IReadOnlyList<BicepRun> BuildParams { get; } = buildParams;
    public IReadOnlyList<BicepRun> Lints { get; } = lints;

    /// <summary>The ARM template compiled from main.bicep.</summary>
    public JsonObject Template => JsonNode.Parse(Build.Result.StdOut)!.AsObject();

    /// <summary>Parameter values set by a .bicepparam file (compiled).</summary>
    public JsonObject ParametersOf(string paramFile)
    {
        var run = BuildParams.Single(r => r.File == paramFile);
        var output = JsonNode.Parse(run.Result.StdOut)!;
        return JsonNode.Parse(output["parametersJson"]!.GetValue<string>())!["parameters"]!.AsObject();
    }

    /// <summary>A template's resources with their symbolic names (languageVersion 2.0 keeps them in an object
    /// keyed by symbol; 1.0 in an array, without symbols).</summary>
    public static IEnumerable<(string? Symbol, JsonObject Resource)> ResourcesOf(JsonObject template) =>
        template["resources"] switch
        {
            JsonObject bySymbol => bySymbol.Select(p => ((string?)p.Key, p.Value!.AsObject())),
            JsonArray list => list.Select(r => ((string?)null, r!.AsObject())),
            _ => [],
        };

    /// <summary>The single resource of a type in a template.</summary>
    public static JsonObject ResourceOfType(JsonObject template, string type) =>
        ResourcesOf(template).Select(r => r.Resource).Single(r => r["type"]!.ToString() == type);

    /// <summary>A parameter's default in main.bicep.</summary>
    public JsonNode? DefaultOf(string parameter) =>
        Template["parameters"]?[parameter]?["defaultValue"]
        ?? throw new KeyNotFoundException($"main.bicep has no parameter '{parameter}' with a default");

    /// <summary>The compiled template of a module deployed by main.bicep (by module symbol name).</summary>
    public JsonObject Module(string symbol)
    {
        var resources = Template["resources"]!;
        // languageVersion 2.0 templates keep resources as an object keyed by symbol; 1.0 as an array.
        var module = resources is JsonObject byName
            ? byName[symbol]
            : resources.AsArray().FirstOrDefault(r => r?["name"]?.ToString().Contains(symbol) == true);
        return module?["properties"]?["template"]?.AsObject()
            ?? throw new KeyNotFoundException($"module '{symbol}' not found in the compiled main.bicep");
    }

    /// <summary>The parameters main.bicep passes to a module (raw values or ARM expressions).</summary>
    public JsonObject ModuleInputs(string symbol)
    {
        var resources = Template["resources"]!;
        var module = resources is JsonObject byName ? byName[symbol] : null;
        return module?["properties"]?["parameters"]?.AsObject()
            ?? throw new KeyNotFoundException($"module '{symbol}' not found in the compiled main.bicep");
    }
}
