using Microsoft.Extensions.Configuration;

namespace BatchRender.Cli.Tests;

/// <summary>The guidance <c>eval</c> renders with when <c>--guidance</c> is not given: the one ingest would give an item
/// of that model that names none.</summary>
public sealed class CliConfigurationTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("batchrender-cli-config-").FullName;

    [Fact]
    public void The_default_guidance_is_the_configured_model_s_own_also_when_the_model_is_given_as_its_directory()
    {
        var demo = Directory.CreateDirectory(Path.Combine(_dir, "demo")).FullName;
        var other = Directory.CreateDirectory(Path.Combine(_dir, "candidate")).FullName;
        var configuration = new ConfigurationBuilder().AddInMemoryCollection(new Dictionary<string, string?>
        {
            ["Models:demo:Path"] = demo, ["Models:demo:GuidanceScale"] = "3",
            ["Models:big:Path"] = other + "-big",
            ["Defaults:Model"] = "demo", ["Defaults:GuidanceScale"] = "6",
        }).Build();

        Assert.Equal(3.0, CliConfiguration.DefaultGuidanceScale(configuration, "demo", demo));
        Assert.Equal(3.0, CliConfiguration.DefaultGuidanceScale(configuration, demo + "/", demo));
        Assert.Equal(6.0, CliConfiguration.DefaultGuidanceScale(configuration, "big", other + "-big"));
        Assert.Equal(6.0, CliConfiguration.DefaultGuidanceScale(configuration, other, other));
    }

    public void Dispose()
    {
        try { Directory.Delete(_dir, recursive: true); } catch (IOException) { }
    }
}
