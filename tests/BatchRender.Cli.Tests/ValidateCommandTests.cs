using BatchRender.Cli.Tests.Infrastructure;

namespace BatchRender.Cli.Tests;

[Collection(CliCollection.Name)]
public sealed class ValidateCommandTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("batchrender-cli-validate-").FullName;

    [Fact]
    public async Task A_valid_manifest_exits_0_with_its_job_and_item_count()
    {
        var manifest = Manifests.Write(_dir, Manifests.Images("valid-job", 3));
        var result = await CliHarness.RunAsync("validate", manifest);
        Assert.True(result.ExitCode == 0, result.ToString());
        Assert.Contains("valid-job", result.Out);
        Assert.Contains("3 items", result.Out);
    }

    [Fact]
    public async Task An_invalid_manifest_exits_2_and_prints_every_problem_with_its_path()
    {
        var manifest = Manifests.Write(_dir, Manifests.Invalid);
        var result = await CliHarness.RunAsync("validate", manifest);
        Assert.True(result.ExitCode == 2, result.ToString());
        Assert.Contains("2 problems", result.Error);
        Assert.Contains("items[0].width", result.Error);
        Assert.Contains("items[1].colour", result.Error);
    }

    [Fact]
    public async Task A_missing_file_is_invalid_input()
    {
        var result = await CliHarness.RunAsync("validate", Path.Combine(_dir, "nope.json"));
        Assert.Equal(2, result.ExitCode);
        Assert.Contains("file not found", result.Error);
    }

    [Fact]
    public async Task A_schedule_reports_its_inline_manifest_problems_under_manifest()
    {
        var schedule = Manifests.Write(_dir, """
            { "cron": "0 2 * * *", "timeZone": "UTC",
              "manifest": { "schemaVersion": 1, "items": [ { "id": "n1", "prompt": "a star", "steps": 0 } ] } }
            """, "nightly.json");
        var result = await CliHarness.RunAsync("validate", "--schedule", schedule);
        Assert.True(result.ExitCode == 2, result.ToString());
        Assert.Contains("manifest.items[0].steps", result.Error);

        var good = Manifests.Write(_dir, """
            { "cron": "0 2 * * *", "timeZone": "UTC", "manifest": { "schemaVersion": 1, "items": [ { "id": "n1", "prompt": "a star" } ] } }
            """, "nightly-ok.json");
        var ok = await CliHarness.RunAsync("validate", "--schedule", good);
        Assert.True(ok.ExitCode == 0, ok.ToString());
        Assert.Contains("nightly-ok-", ok.Out); // the next occurrence's job id
    }

    public void Dispose() => Directory.Delete(_dir, recursive: true);
}
