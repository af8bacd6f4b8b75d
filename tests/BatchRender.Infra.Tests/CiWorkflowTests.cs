namespace BatchRender.Infra.Tests;

/// <summary>The CI workflow for forks runs what .ci/run runs and builds the images that exist.</summary>
public class CiWorkflowTests
{
    [Fact]
    public void Workflow_runs_the_ci_script_and_builds_both_worker_images()
    {
        Assert.True(File.Exists(Repo.Path(".ci", "run")), ".ci/run is the CI entry point");
        var workflow = Yaml.Parse(Repo.Read(".github", "workflows", "ci.yml"));
        var steps = workflow["jobs"]!.AsObject()
            .SelectMany(job => job.Value!["steps"]!.AsArray())
            .Select(step => step!["run"]?.GetValue<string>() ?? "")
            .ToList();
        Assert.Contains(steps, run => run.Trim() == "bash .ci/run");

        var flavours = workflow["jobs"]!["images"]!["strategy"]!["matrix"]!["flavour"]!.AsArray().Select(f => f.Str()).ToList();
        Assert.Equal(["cpu", "gpu"], flavours);
        foreach (var flavour in flavours)
            Assert.True(File.Exists(Repo.Path("infra", "docker", $"Dockerfile.worker-{flavour}")));
        Assert.Contains(steps, run => run.Contains("-f infra/docker/Dockerfile.worker-${{ matrix.flavour }}"));
    }
}
