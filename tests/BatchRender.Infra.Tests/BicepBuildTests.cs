namespace BatchRender.Infra.Tests;

/// <summary>bicep/ compiles and lints clean with the CLI restored from NuGet (no Azure access needed).</summary>
public class BicepBuildTests
{
    [Fact]
    public async Task Main_template_builds_without_diagnostics()
    {
        var results = await Bicep.GetAsync();
        Assert.True(results.Build.Result.ExitCode == 0, results.Build.Describe());
        Assert.True(results.Build.Diagnostics.Count == 0, results.Build.Describe());
        Assert.Equal("2.0", results.Template["languageVersion"]?.ToString());
    }

    [Theory]
    [MemberData(nameof(ParamFiles))]
    public async Task Parameter_file_builds_without_diagnostics(string paramFile)
    {
        var run = (await Bicep.GetAsync()).BuildParams.Single(r => r.File == paramFile);
        Assert.True(run.Result.ExitCode == 0, run.Describe());
        Assert.True(run.Diagnostics.Count == 0, run.Describe());
    }

    [Fact]
    public async Task Lint_reports_no_error_and_no_warning()
    {
        var run = (await Bicep.GetAsync()).Lints.Single(r => r.File == Bicep.MainFile);
        var file = run.File;
        Assert.True(run.Result.ExitCode == 0, run.Describe());
        Assert.True(run.Diagnostics.Count == 0, $"{file}:\n{string.Join('\n', run.Diagnostics)}");
    }

    [Fact]
    public void Bicepconfig_turns_lint_findings_into_errors()
    {
        // bicepconfig.json is JSON with comments.
        var config = System.Text.Json.Nodes.JsonNode.Parse(Repo.Read("bicep", "bicepconfig.json"),
            documentOptions: new System.Text.Json.JsonDocumentOptions { CommentHandling = System.Text.Json.JsonCommentHandling.Skip })!;
        var rules = config["analyzers"]!["core"]!["rules"]!.AsObject();
        Assert.NotEmpty(rules);
        Assert.All(rules, rule => Assert.Equal("error", rule.Value!["level"]!.ToString()));
        foreach (var essential in new[] { "outputs-should-not-contain-secrets", "no-hardcoded-env-urls", "no-unused-params", "secure-secrets-in-params" })
            Assert.True(rules.ContainsKey(essential), $"bicepconfig.json should make '{essential}' an error");
    }

    public static TheoryData<string> ParamFiles() => new(Bicep.ParamFiles);
}
