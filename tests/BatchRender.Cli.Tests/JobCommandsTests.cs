using System.Text.Json;
using Azure.Storage.Blobs;
using BatchRender.Cli.Tests.Infrastructure;
using BatchRender.Core.Tests.Infrastructure;

namespace BatchRender.Cli.Tests;

/// <summary>submit → status → cancel against a real Azurite, through the configuration a user would pass (--config).</summary>
[Collection(CliCollection.Name)]
public sealed class JobCommandsTests(AzuriteFixture azurite) : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("batchrender-cli-jobs-").FullName;

    [Fact]
    public async Task Submit_then_status_then_cancel()
    {
        var config = CliHarness.WriteConfig(_dir, azurite);
        var manifest = Manifests.Write(_dir, Manifests.Images("cli-job-1", 3));

        var submit = await CliHarness.RunAsync("submit", manifest, "--config", config);
        Assert.True(submit.ExitCode == 0, submit.ToString());
        Assert.Contains("submitted job cli-job-1: 3 task(s) enqueued", submit.Out);

        var again = await CliHarness.RunAsync("submit", manifest, "--config", config);
        Assert.True(again.ExitCode == 0, again.ToString());
        Assert.Contains("already submitted", again.Out);

        var status = await CliHarness.RunAsync("status", "cli-job-1", "--json", "--config", config);
        Assert.True(status.ExitCode == 0, status.ToString());
        using (var json = JsonDocument.Parse(status.Out))
        {
            var counts = json.RootElement.GetProperty("job").GetProperty("counts");
            Assert.Equal(3, counts.GetProperty("total").GetInt32());
            Assert.Equal(3, counts.GetProperty("queued").GetInt32());
            Assert.Equal(3, json.RootElement.GetProperty("items").GetArrayLength());
        }

        var cancel = await CliHarness.RunAsync("cancel", "cli-job-1", "--config", config);
        Assert.True(cancel.ExitCode == 0, cancel.ToString());

        var after = await CliHarness.RunAsync("status", "cli-job-1", "--config", config);
        Assert.True(after.ExitCode == 0, after.ToString());
        Assert.Contains("cancel", after.Out);
    }

    [Fact]
    public async Task An_invalid_manifest_exits_2_writes_errors_json_and_records_no_job()
    {
        var config = CliHarness.WriteConfig(_dir, azurite);
        var manifest = Manifests.Write(_dir, Manifests.Invalid);

        var submit = await CliHarness.RunAsync("submit", manifest, "--config", config);
        Assert.True(submit.ExitCode == 2, submit.ToString());
        Assert.Contains("items[0].width", submit.Error);

        var renders = new BlobServiceClient(azurite.ConnectionString).GetBlobContainerClient(CliHarness.RendersContainer(config));
        var errors = (await renders.GetBlobClient("broken-job/_job/errors.json").DownloadContentAsync()).Value.Content.ToString();
        Assert.Contains("items[1].colour", errors);

        var status = await CliHarness.RunAsync("status", "broken-job", "--config", config);
        Assert.Equal(2, status.ExitCode);
        Assert.Contains("not found", status.Error);
    }

    [Fact]
    public async Task Unknown_jobs_are_invalid_input()
    {
        var config = CliHarness.WriteConfig(_dir, azurite);
        Assert.Equal(2, (await CliHarness.RunAsync("cancel", "no-such-job", "--config", config)).ExitCode);
    }

    public void Dispose() => Directory.Delete(_dir, recursive: true);
}
