using System.Text.RegularExpressions;
using BatchRender.Core.Configuration;

namespace BatchRender.Infra.Tests;

/// <summary>The CPU and GPU worker images build the same project; only the base image and the backend differ.</summary>
public class DockerfileTests
{
    private static readonly string Cpu = Repo.Read("infra", "docker", "Dockerfile.worker-cpu");
    private static readonly string Gpu = Repo.Read("infra", "docker", "Dockerfile.worker-gpu");

    private static List<string> Instructions(string dockerfile) => dockerfile
        .Replace("\\\n", " ")
        .Split('\n')
        .Select(l => Regex.Replace(l.Trim(), @"\s+", " "))
        .Where(l => l.Length > 0 && !l.StartsWith('#'))
        .ToList();

    private static string Arg(string dockerfile, string name) =>
        Regex.Match(dockerfile, $@"^ARG {name}=(\S+)\s*$", RegexOptions.Multiline) is { Success: true } m
            ? m.Groups[1].Value
            : throw new KeyNotFoundException($"ARG {name}=... not found");

    [Fact]
    public void Cpu_and_gpu_differ_only_in_base_image_and_backend()
    {
        var cpu = Instructions(Cpu);
        var gpu = Instructions(Gpu);
        Assert.Equal(cpu.Count, gpu.Count);
        var differing = cpu.Zip(gpu).Where(p => p.First != p.Second).ToList();
        Assert.Equal(2, differing.Count);
        Assert.All(differing, d => Assert.Matches(@"^ARG (RUNTIME_BASE|TORCH_BACKEND)=", d.First));
        Assert.All(differing, d => Assert.Equal(d.First.Split('=')[0], d.Second.Split('=')[0]));

        Assert.Equal("cpu", Arg(Cpu, "TORCH_BACKEND"));
        Assert.Equal("cuda", Arg(Gpu, "TORCH_BACKEND"));
        Assert.StartsWith("nvidia/cuda:", Arg(Gpu, "RUNTIME_BASE"));
        Assert.Contains("runtime", Arg(Gpu, "RUNTIME_BASE"));
        Assert.DoesNotContain("cuda", Arg(Cpu, "RUNTIME_BASE"));
    }

    [Fact]
    public void Backends_are_the_ones_the_model_project_switches_on()
    {
        var props = Repo.Read("Directory.Build.props");
        Assert.Contains("<TorchBackend Condition=", props);
        var model = Repo.Read("src", "BatchRender.Model", "BatchRender.Model.csproj");
        foreach (var backend in new[] { Arg(Cpu, "TORCH_BACKEND"), Arg(Gpu, "TORCH_BACKEND") })
            Assert.Contains($"'$(TorchBackend)' == '{backend}'", model);

        foreach (var dockerfile in new[] { Cpu, Gpu })
        {
            var publish = Instructions(dockerfile).Single(l => l.StartsWith("RUN dotnet publish"));
            Assert.Contains("src/BatchRender.Worker/BatchRender.Worker.csproj", publish);
            Assert.Contains("-p:TorchBackend=${TORCH_BACKEND}", publish);
            Assert.True(File.Exists(Repo.Path("src", "BatchRender.Worker", "BatchRender.Worker.csproj")));
        }
    }

    [Fact]
    public async Task Image_runs_the_worker_as_non_root_on_its_health_port()
    {
        var lines = Instructions(Cpu);
        var port = new WorkerOptions().HealthPort;
        Assert.Contains($"EXPOSE {port}", lines);
        var user = lines.Last(l => l.StartsWith("USER ")).Split(' ')[1].Split(':')[0];
        Assert.NotEqual("root", user);
        Assert.NotEqual("0", user);
        Assert.Equal("ENTRYPOINT [\"dotnet\", \"/app/BatchRender.Worker.dll\"]", lines.Last(l => l.StartsWith("ENTRYPOINT")));

        // The Kubernetes pod runs as the image's user, and the model path baked in is the one the ConfigMap names.
        var overlay = await RenderedOverlay.GetAsync("dev");
        var podSecurity = overlay.WorkerDeploymentResource["spec"]!["template"]!["spec"]!["securityContext"]!;
        Assert.Equal(user, podSecurity["runAsUser"].Str());
        var settings = overlay.ConfigMapData("batchrender-worker-settings");
        Assert.Contains($"Models__demo__Path={settings["Models__demo__Path"]}", string.Join(' ', lines.Where(l => l.StartsWith("ENV ") || l.StartsWith("Models__"))));
        Assert.Matches(@"COPY --from=model .* /app/models/", string.Join('\n', lines));
        Assert.Equal("/app/models/demo", settings["Models__demo__Path"]);
    }

    [Fact]
    public void Dockerignore_keeps_sources_and_the_demo_model_in_the_context()
    {
        var ignored = Repo.Read(".dockerignore").Split('\n').Select(l => l.Trim()).Where(l => l.Length > 0 && !l.StartsWith('#')).ToList();
        Assert.Contains("**/bin/", ignored);
        Assert.Contains("**/obj/", ignored);
        foreach (var needed in new[] { "src", "src/", "models", "models/", "models/demo", "build", "build/", "Directory.Build.props", "Directory.Packages.props" })
            Assert.DoesNotContain(needed, ignored);
    }
}
