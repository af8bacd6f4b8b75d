using Microsoft.Extensions.Configuration;
using System.Text;
using System.Text.Json;
using BatchRender.Core.Configuration;
using BatchRender.Core.Manifests;

namespace BatchRender.Core.Tests.Manifests;

public sealed class ManifestValidatorTests : IDisposable
{
    private readonly ManifestTestKit _kit = new();

    private static byte[] Sample() => File.ReadAllBytes(ManifestTestKit.TestData("Manifests", "sample.json"));

    [Fact]
    public async Task The_design_sample_is_valid()
    {
        var result = await _kit.ValidateAsync(Sample(), "campaigns/spring/manifest.json");

        Assert.True(result.IsValid, string.Join("\n", result.Describe()));
        Assert.Equal("spring-campaign-0042", result.JobId);
        Assert.False(result.JobIdDerived);
        Assert.Equal(3, result.ItemCount);
        Assert.Equal("demo", result.Model);
        Assert.Empty(result.Warnings);
        Assert.Equal(Sample().LongLength, result.Length);
        Assert.Equal(Convert.ToHexStringLower(System.Security.Cryptography.SHA256.HashData(Sample())), result.ContentSha256);
    }

    [Fact]
    public async Task A_UTF8_byte_order_mark_is_accepted()
    {
        var result = await _kit.ValidateAsync([0xEF, 0xBB, 0xBF, .. Sample()]);
        Assert.True(result.IsValid, string.Join("\n", result.Describe()));
    }

    [Fact]
    public async Task A_missing_or_invalid_job_id_is_derived_from_the_name_and_content_hash()
    {
        var json = ManifestTestKit.Manifest("""{ "id": "a", "prompt": "p" }""");
        var result = await _kit.ValidateAsync(json, "manifests/team a/Spring batch (2).json");
        var hash = Convert.ToHexStringLower(System.Security.Cryptography.SHA256.HashData(Encoding.UTF8.GetBytes(json)));

        Assert.True(result.IsValid);
        Assert.True(result.JobIdDerived);
        Assert.Equal($"Spring-batch-2-{hash[..12]}", result.JobId);

        var invalid = await _kit.ValidateAsync(ManifestTestKit.Manifest("""{ "id": "a", "prompt": "p" }""", "\"jobId\": \"_job\","), "中文.json");
        Assert.False(invalid.IsValid);
        Assert.StartsWith("manifest-", invalid.JobId);
        Assert.True(ManifestIds.IsValid(invalid.JobId));
    }

    [Fact]
    public async Task A_scheduled_job_ignores_the_manifests_job_id_with_a_warning()
    {
        var json = ManifestTestKit.Manifest("""{ "id": "a", "prompt": "p" }""", "\"jobId\": \"my-own\",");
        var result = await _kit.ValidateAsync(json, assignedJobId: "nightly-20261125T0200Z");

        Assert.True(result.IsValid);
        Assert.Equal("nightly-20261125T0200Z", result.JobId);
        var warning = Assert.Single(result.Warnings);
        Assert.Equal("jobId", warning.Path);
        Assert.Contains("\"my-own\" is ignored: this job was started by a schedule and is named 'nightly-20261125T0200Z'", warning.Message);
    }

    [Fact]
    public async Task Defaults_after_items_still_count_for_the_pixel_limit()
    {
        var kit = new ManifestTestKit(new LimitsOptions { MaxPixels = 512 * 512 });
        using var _ = kit;
        // The second item takes its height from 'defaults', which comes after 'items'.
        var json = """
            { "items": [ { "id": "a", "prompt": "p", "width": 512, "height": 512 },
                         { "id": "b", "prompt": "p", "width": 1024 },
                         { "id": "c", "prompt": "p", "height": 64 } ],
              "defaults": { "height": 512 }, "schemaVersion": 1 }
            """;
        var result = await kit.ValidateAsync(json);

        var problem = Assert.Single(result.Problems);
        Assert.Equal("items[1]", problem.Path);
        Assert.Contains("1024 x 512 = 524,288 pixels, over the limit of 262,144", problem.Message);
    }

    [Fact]
    public async Task Defaults_over_the_pixel_limit_are_reported_once_at_defaults()
    {
        using var kit = new ManifestTestKit(new LimitsOptions { MaxPixels = 256 * 256 });
        var json = ManifestTestKit.Manifest("""{ "id": "a", "prompt": "p" }, { "id": "b", "prompt": "p" }""", "\"defaults\": { \"width\": 512, \"height\": 512 },");
        var result = await kit.ValidateAsync(json);

        var problem = Assert.Single(result.Problems);
        Assert.Equal("defaults", problem.Path);
    }

    [Fact]
    public async Task Every_problem_is_reported_at_once_up_to_1000_then_counted()
    {
        var items = string.Join(",", Enumerable.Range(0, 1500).Select(i => $$"""{ "id": "i{{i}}", "prompt": "p", "width": 100, "steps": 0 }"""));
        var result = await _kit.ValidateAsync(ManifestTestKit.Manifest(items));

        Assert.Equal(3000, result.TotalProblems);
        Assert.Equal(1000, result.Problems.Count);
        Assert.True(result.Truncated);
        Assert.Equal("items[0].width", result.Problems[0].Path);
        Assert.Equal("items[0].steps", result.Problems[1].Path);
        Assert.Equal("items[499].steps", result.Problems[^1].Path);
        Assert.Equal("... and 2,000 more problems", result.Describe().Last());
    }

    [Fact]
    public async Task Problems_in_many_places_are_all_reported_in_document_order()
    {
        var json = """
            { "schemaVersion": 1, "model": "dmeo", "defaults": { "sampler": "euler" },
              "items": [ { "id": "ok", "prompt": "fine" },
                         { "id": "bad id", "prompt": "", "video": { "frames": 1 } },
                         { "id": "ok", "prompt": "again" } ] }
            """;
        var result = await _kit.ValidateAsync(json);

        Assert.Equal(
            ["model", "defaults.sampler", "items[1].id", "items[1].prompt", "items[1].video.frames", "items[2].id"],
            result.Problems.Select(p => p.Path));
        Assert.Contains("did you mean 'demo'?", result.Problems[0].Message);
    }

    [Fact]
    public async Task The_errors_document_has_the_agreed_shape()
    {
        var result = await _kit.ValidateAsync(ManifestTestKit.Manifest("""{ "id": "a", "prompt": "p", "width": 100 }"""), "manifests/x.json");
        var json = JsonSerializer.Serialize(ManifestErrorsDocument.From(result));
        using var doc = JsonDocument.Parse(json);
        var root = doc.RootElement;

        Assert.Equal(result.JobId, root.GetProperty("jobId").GetString());
        Assert.Equal("manifests/x.json", root.GetProperty("source").GetString());
        Assert.Equal(1, root.GetProperty("totalProblems").GetInt32());
        Assert.False(root.GetProperty("truncated").GetBoolean());
        var problem = root.GetProperty("problems")[0];
        Assert.Equal("items[0].width", problem.GetProperty("path").GetString());
        Assert.StartsWith("must be a multiple of 16", problem.GetProperty("message").GetString());
        Assert.Equal(0, root.GetProperty("warnings").GetArrayLength());
    }

    [Fact]
    public async Task A_value_longer_than_any_field_needs_stops_reading_with_a_problem()
    {
        var json = ManifestTestKit.Manifest($$"""{ "id": "a", "prompt": "{{new string('x', 3 << 20)}}" }""");
        var result = await _kit.ValidateAsync(json);

        var problem = Assert.Single(result.Problems);
        Assert.Equal("items[0].prompt", problem.Path);
        Assert.Contains("a single value here is longer than 1,048,576 bytes", problem.Message);
    }

    [Fact]
    public async Task Megabytes_of_whitespace_do_not_grow_the_buffer()
    {
        var json = ManifestTestKit.Manifest("""{ "id": "a",""" + new string(' ', 4 << 20) + "\"prompt\": \"p\" }");
        var result = await _kit.ValidateAsync(json);
        Assert.True(result.IsValid, string.Join("\n", result.Describe()));
    }

    [Fact]
    public void Configured_defaults_are_checked_at_start_up()
    {
        var e = Assert.Throws<InvalidOperationException>(() => new ManifestRules(new LimitsOptions(),
            new RenderDefaultsOptions { Width = 100, Sampler = "euler", Model = "nope" }, new HashSet<string> { "demo" }));
        Assert.Contains("Defaults:Width = 100 must be a multiple of 16", e.Message);
        Assert.Contains("Defaults:Sampler = 'euler'", e.Message);
        Assert.Contains("Defaults:Model = 'nope' is not one of the configured Models (demo)", e.Message);
    }

    [Fact]
    public void A_model_s_own_guidance_scale_is_checked_at_start_up_naming_the_setting()
    {
        var models = new HashSet<string> { "demo" };
        var e = Assert.Throws<InvalidOperationException>(() => new ManifestRules(new LimitsOptions(), new RenderDefaultsOptions(), models,
            new Dictionary<string, double> { ["demo"] = 40, ["gone"] = 3 }));
        Assert.Contains("Models:demo:GuidanceScale = 40 must be a number from 0 to 30", e.Message);
        Assert.Contains("Models:gone:GuidanceScale is set for a model that is not configured (demo)", e.Message);

        var configuration = new ConfigurationBuilder().AddInMemoryCollection(new Dictionary<string, string?>
        {
            ["Models:demo:Path"] = "models/demo", ["Models:demo:GuidanceScale"] = "three",
        }).Build();
        e = Assert.Throws<InvalidOperationException>(() => ManifestRules.FromConfiguration(configuration));
        Assert.Contains("Models:demo:GuidanceScale = 'three' must be a number from 0 to 30", e.Message);

        configuration["Models:demo:GuidanceScale"] = "3.5";
        var rules = ManifestRules.FromConfiguration(configuration);
        Assert.Equal((3.5, 5.0), (rules.DefaultGuidanceScale("demo"), rules.DefaultGuidanceScale("other")));
    }

    [Theory]
    [InlineData("a", true)]
    [InlineData("star-001", true)]
    [InlineData("A.b_c-9", true)]
    [InlineData("-a", false)]
    [InlineData("a.", false)]
    [InlineData("a b", false)]
    [InlineData("ä", false)]
    public void Ids_follow_the_design_pattern(string id, bool valid)
    {
        Assert.Equal(valid, ManifestIds.IsValid(id));
        Assert.Equal(valid, ManifestIds.Explain(id) is null);
        Assert.True(ManifestIds.IsValid(new string('a', 128)));
        Assert.False(ManifestIds.IsValid(new string('a', 129)));
    }

    public void Dispose() => _kit.Dispose();
}

public sealed class ManifestRulesConfigurationTests
{
    private static Microsoft.Extensions.Configuration.IConfiguration Config(params (string Key, string Value)[] settings) =>
        new Microsoft.Extensions.Configuration.ConfigurationBuilder()
            .AddInMemoryCollection(settings.Select(s => new KeyValuePair<string, string?>(s.Key, s.Value)))
            .Build();

    [Fact]
    public void Rules_come_from_the_Limits_Defaults_and_Models_sections()
    {
        var rules = ManifestRules.FromConfiguration(Config(
            ("Limits:MaxItems", "10"), ("Limits:MaxFrames", "48"), ("Defaults:Model", "hunyuan-dit-v1.2"), ("Defaults:Steps", "30"),
            ("Models:demo:Path", "models/demo"), ("Models:hunyuan-dit-v1.2:Path", "/models/hunyuan")));

        Assert.Equal(10, rules.Limits.MaxItems);
        Assert.Equal(48, rules.Limits.MaxFrames);
        Assert.Equal(30, rules.Defaults.Steps);
        Assert.Equal(["demo", "hunyuan-dit-v1.2"], rules.Models.Order());
    }

    [Fact]
    public void Invalid_limits_or_defaults_fail_naming_the_setting()
    {
        var limits = Assert.Throws<InvalidOperationException>(() => ManifestRules.FromConfiguration(Config(("Limits:MaxItems", "0"), ("Models:demo:Path", "x"))));
        Assert.Contains("Limits:MaxItems", limits.Message);
        var model = Assert.Throws<InvalidOperationException>(() => ManifestRules.FromConfiguration(Config(("Models:other:Path", "x"))));
        Assert.Contains("Defaults:Model = 'demo' is not one of the configured Models (other)", model.Message);
    }
}
