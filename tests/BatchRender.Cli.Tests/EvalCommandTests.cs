using BatchRender.Cli.Tests.Infrastructure;
using BatchRender.Core.Tests.Infrastructure;
using BatchRender.Model.Tests.Pipelines;

namespace BatchRender.Cli.Tests;

/// <summary><c>eval</c>'s render settings are checked before any model loads: a bad value exits 2 naming the option.</summary>
[Collection(CliCollection.Name)]
public sealed class EvalCommandTests(AzuriteFixture azurite) : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("batchrender-cli-eval-").FullName;

    [Theory]
    [InlineData("--sampler", "euler", "--sampler: unknown sampler 'euler'")]
    [InlineData("--guidance", "31", "--guidance 31 must be a number from 0 to 30")]
    [InlineData("--steps", "0", "--steps and --images must be at least 1")]
    public async Task A_bad_render_setting_exits_2_naming_it(string option, string value, string message)
    {
        var config = CliHarness.WriteConfig(_dir, azurite);
        var model = TinyModelDirectory.Create(Path.Combine(_dir, "tiny"));
        var result = await CliHarness.RunAsync("eval", "--model", model, option, value, "--config", config);
        Assert.True(result.ExitCode == 2, result.ToString());
        Assert.Contains(message, result.Error);
    }

    public void Dispose()
    {
        try { Directory.Delete(_dir, recursive: true); } catch (IOException) { }
    }
}
