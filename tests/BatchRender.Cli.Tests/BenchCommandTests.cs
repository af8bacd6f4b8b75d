using System.Text.Json;
using BatchRender.Cli.Tests.Infrastructure;
using BatchRender.Core.Tests.Infrastructure;
using BatchRender.Model.Tests.Pipelines;

namespace BatchRender.Cli.Tests;

/// <summary><c>bench --pipeline --json</c> at a small size: the DESIGN.md shape on stdout (no timing is asserted).</summary>
[Collection(CliCollection.Name)]
public sealed class BenchCommandTests(AzuriteFixture azurite) : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("batchrender-cli-bench-").FullName;

    [Fact]
    public async Task Pipeline_bench_prints_one_json_object_in_the_design_shape()
    {
        var config = CliHarness.WriteConfig(_dir, azurite); // the bench runs on the test's emulator
        var model = TinyModelDirectory.Create(Path.Combine(_dir, "tiny"));
        var result = await CliHarness.RunAsync("bench", "--pipeline", "--json", "--items", "100", "--overhead-items", "16", "--render-model", model, "--config", config);
        Assert.True(result.ExitCode == 0, result.ToString());

        using var json = JsonDocument.Parse(result.Out);
        var pipeline = json.RootElement.GetProperty("pipeline");
        Assert.True(pipeline.GetProperty("ingestTasksPerSecond").GetDouble() > 0);
        Assert.True(pipeline.GetProperty("ingestPeakMemoryMb").GetDouble() > 0);
        Assert.True(pipeline.GetProperty("overheadShareOfRender").GetDouble() >= 0);   // near 0 when the renders hide the storage work
        Assert.Equal([10, 50, 100], pipeline.GetProperty("ingestRuns").EnumerateArray().Select(r => r.GetProperty("items").GetInt32()));
        var overhead = pipeline.GetProperty("overhead");
        Assert.Contains("not the demo model", overhead.GetProperty("model").GetString());
        Assert.True(overhead.GetProperty("pipelineWorkMsPerItem").GetDouble() > 0);
        Assert.True(overhead.GetProperty("renderMsPerItem").GetDouble() > 0);
        Assert.Equal(overhead.GetProperty("overheadMsPerItem").GetDouble() / overhead.GetProperty("renderMsPerItem").GetDouble(),
                     pipeline.GetProperty("overheadShareOfRender").GetDouble(), 3);
    }

    public void Dispose()
    {
        try { Directory.Delete(_dir, recursive: true); } catch (IOException) { }
    }
}
