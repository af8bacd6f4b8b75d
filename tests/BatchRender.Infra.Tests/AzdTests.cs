using System.Text.RegularExpressions;

namespace BatchRender.Infra.Tests;

/// <summary>azure.yaml (azd up) points at files that exist and only at values the Bicep outputs.</summary>
public class AzdTests
{
    // Set by azd itself rather than by a Bicep output.
    private static readonly string[] AzdVariables = ["SERVICE_WORKER_IMAGE_NAME", "AZURE_ENV_NAME", "AZURE_LOCATION", "AZURE_SUBSCRIPTION_ID", "AZURE_PRINCIPAL_ID"];

    [Fact]
    public async Task Every_variable_azure_yaml_uses_is_a_bicep_output()
    {
        var outputs = (await Bicep.GetAsync()).Template["outputs"]!.AsObject().Select(o => o.Key).ToHashSet();
        var used = Regex.Matches(Repo.Read("azure.yaml"), @"\$\{(\w+)\}").Select(m => m.Groups[1].Value).Distinct().ToList();
        Assert.NotEmpty(used);
        foreach (var variable in used)
            Assert.True(outputs.Contains(variable) || AzdVariables.Contains(variable),
                $"azure.yaml uses ${{{variable}}}, which main.bicep does not output");
    }

    [Fact]
    public async Task Services_point_at_the_projects_images_and_manifests()
    {
        var azure = Yaml.Parse(Repo.Read("azure.yaml"));
        Assert.Equal("bicep", azure["infra"]!["path"].Str());
        Assert.True(File.Exists(Repo.Path("bicep", azure["infra"]!["module"].Str() + ".bicep")));
        Assert.True(File.Exists(Repo.Path("bicep", azure["infra"]!["module"].Str() + ".bicepparam")),
            "azd reads main.bicepparam for its parameters");

        var functions = azure["services"]!["functions"]!;
        Assert.Equal("function", functions["host"].Str());
        Assert.True(File.Exists(Path.Combine(Repo.Path(functions["project"].Str()), "BatchRender.Functions.csproj")));

        var worker = azure["services"]!["worker"]!;
        Assert.Equal("aks", worker["host"].Str());
        var project = Repo.Path(worker["project"].Str());
        var dockerfile = Path.GetFullPath(Path.Combine(project, worker["docker"]!["path"].Str()));
        Assert.Equal(Repo.Path("infra", "docker", "Dockerfile.worker-gpu"), dockerfile);
        Assert.Equal(Path.GetFullPath(Repo.Root).TrimEnd('/'), Path.GetFullPath(Path.Combine(project, worker["docker"]!["context"].Str())).TrimEnd('/'));

        // The overlay directory is chosen by a Bicep output whose values are environmentType's allowed values.
        var k8s = worker["k8s"]!;
        Assert.Equal("./overlays/${BATCHRENDER_K8S_OVERLAY}", k8s["kustomize"]!["dir"].Str());
        var bicep = await Bicep.GetAsync();
        Assert.Equal("[parameters('environmentType')]", bicep.Template["outputs"]!["BATCHRENDER_K8S_OVERLAY"]!["value"]!.ToString());
        var environmentTypes = bicep.Template["parameters"]!["environmentType"]!["allowedValues"]!.AsArray().Select(v => v.Str()).ToList();
        Assert.Equal(RenderedOverlay.Overlays.Order(), environmentTypes.Order());
        foreach (var type in environmentTypes)
            Assert.True(File.Exists(Path.Combine(project, "overlays", type, "kustomization.yaml")), $"no overlay for environmentType {type}");

        var rendered = await RenderedOverlay.GetAsync("dev");
        Assert.Equal(rendered.WorkerDeploymentResource["metadata"]!["namespace"].Str(), k8s["namespace"].Str());
        Assert.Equal(rendered.WorkerDeploymentResource["metadata"]!["name"].Str(), k8s["deployment"]!["name"].Str());
        // azd's image edit targets the image name the Deployment uses.
        var edit = k8s["kustomize"]!["edits"]!.AsArray().Single().Str();
        Assert.StartsWith($"set image {rendered.WorkerContainer["image"].Str().Split(':')[0]}=", edit);
    }

    [Fact]
    public async Task Postdeploy_hook_switches_on_the_event_subscription_parameter()
    {
        var azure = Yaml.Parse(Repo.Read("azure.yaml"));
        var script = azure["hooks"]!["postdeploy"]!["posix"]!["run"].Str();
        var path = Repo.Path(script);
        Assert.True(File.Exists(path), $"{script} is missing");
        if (!OperatingSystem.IsWindows())
            Assert.True(File.GetUnixFileMode(path).HasFlag(UnixFileMode.UserExecute), $"{script} is not executable");
        var text = File.ReadAllText(path);

        var azdParams = Repo.Read("bicep", "main.bicepparam");
        var variable = Regex.Match(azdParams, @"enableManifestEventSubscription = bool\(readEnvironmentVariable\('(\w+)'").Groups[1].Value;
        Assert.False(string.IsNullOrEmpty(variable), "main.bicepparam must read enableManifestEventSubscription from the environment");
        Assert.Contains($"azd env set {variable} true", text);

        var outputs = (await Bicep.GetAsync()).Template["outputs"]!.AsObject();
        foreach (var output in Regex.Matches(text, @"\$\{([A-Z][A-Z0-9_]+)[:}]").Select(m => m.Groups[1].Value).Distinct())
            Assert.True(outputs.ContainsKey(output), $"{script} reads {output}, which main.bicep does not output");
    }
}
