using System.Text;
using BatchRender.Core.Configuration;
using BatchRender.Core.Manifests;
using BatchRender.Core.Messages;

namespace BatchRender.Core.Tests.Manifests;

public sealed class ManifestExpanderTests : IDisposable
{
    private readonly ManifestTestKit _kit = new();

    private async Task<(ManifestValidationResult Result, List<RenderTaskMessage> Messages)> RunAsync(byte[] bytes, string name = "campaigns/spring/manifest.json")
    {
        var result = await _kit.ValidateAsync(bytes, name);
        Assert.True(result.IsValid, string.Join("\n", result.Describe()));
        return (result, await _kit.ExpandAsync(bytes, result, ManifestExpander.FolderOf(name)));
    }

    [Fact]
    public async Task The_design_sample_expands_to_one_fully_resolved_message_per_item()
    {
        var (_, messages) = await RunAsync(File.ReadAllBytes(ManifestTestKit.TestData("Manifests", "sample.json")));

        Assert.Equal(["star-001", "bloom", "repair-1"], messages.Select(m => m.ItemId));
        Assert.All(messages, m =>
        {
            Assert.Equal("spring-campaign-0042", m.JobId);
            Assert.Equal("demo", m.Model);
            Assert.Equal((128, 128, 20, 5.0, "ddim", "int8-dynamic", "低质量, 模糊"),
                (m.Params.Width, m.Params.Height, m.Params.Steps, m.Params.GuidanceScale, m.Params.Sampler, m.Params.Quantization, m.Params.NegativePrompt));
            Assert.False(m.Params.SeedWasRandom);
        });

        var (star, bloom, repair) = (messages[0], messages[1], messages[2]);
        Assert.Equal((RenderTaskKinds.Image, 7L, "蓝色背景左上角有一个大的红色五角星"), (star.Kind, star.Params.Seed, star.Params.Prompt));
        Assert.Equal(RenderTaskKinds.Video, bloom.Kind);
        Assert.Equal(42L, bloom.Params.Seed);
        Assert.Equal(new VideoParams(24, 8, 1.2), bloom.Params.Video);
        Assert.Null(bloom.Params.Inpaint);
        Assert.Equal(RenderTaskKinds.Inpaint, repair.Kind);
        Assert.Equal(new InpaintParams("campaigns/spring/inputs/scene.png", "campaigns/spring/inputs/scene-mask.png", 0.8), repair.Params.Inpaint);
    }

    [Fact]
    public async Task Item_settings_win_over_manifest_defaults_which_win_over_configuration()
    {
        var configured = new RenderDefaultsOptions { Steps = 30, GuidanceScale = 7.5, NegativePrompt = "configured", VideoFps = 12, InpaintStrength = 0.5 };
        using var kit = new ManifestTestKit(defaults: configured);
        var json = ManifestTestKit.Manifest(
            """
            { "id": "item", "prompt": "p", "steps": 5, "width": 256, "video": { "frames": 3 } },
            { "id": "plain", "prompt": "p", "inpaint": { "image": "inputs/photo.jpg", "mask": "inputs/scene-mask.png" } }
            """,
            "\"defaults\": { \"steps\": 10, \"sampler\": \"ddpm\" },");
        var bytes = Encoding.UTF8.GetBytes(json);
        var result = await kit.ValidateAsync(bytes);
        Assert.True(result.IsValid, string.Join("\n", result.Describe()));
        var messages = await kit.ExpandAsync(bytes, result);

        var (item, plain) = (messages[0].Params, messages[1].Params);
        Assert.Equal((5, 256, 128, "ddpm", 7.5, "configured"), (item.Steps, item.Width, item.Height, item.Sampler, item.GuidanceScale, item.NegativePrompt));
        Assert.Equal(new VideoParams(3, 12, 1.0), item.Video);
        Assert.Equal(10, plain.Steps);
        Assert.Equal(new InpaintParams("inputs/photo.jpg", "inputs/scene-mask.png", 0.5), plain.Inpaint);
        Assert.Equal("demo", messages[0].Model);
    }

    [Fact]
    public async Task A_model_s_own_guidance_scale_comes_before_the_configured_default_and_after_the_manifest()
    {
        using var kit = new ManifestTestKit(defaults: new RenderDefaultsOptions { GuidanceScale = 7.5 },
                                            modelGuidanceScales: new Dictionary<string, double> { ["demo"] = 3 });
        async Task<double[]> Guidance(string json)
        {
            var bytes = Encoding.UTF8.GetBytes(json);
            var result = await kit.ValidateAsync(bytes);
            Assert.True(result.IsValid, string.Join("\n", result.Describe()));
            return (await kit.ExpandAsync(bytes, result)).Select(m => m.Params.GuidanceScale).ToArray();
        }

        const string items = """{ "id": "plain", "prompt": "p" }, { "id": "own", "prompt": "p", "guidanceScale": 6 }""";
        Assert.Equal(new[] { 3.0, 6.0 }, await Guidance(ManifestTestKit.Manifest(items)));
        Assert.Equal(new[] { 4.0, 6.0 }, await Guidance(ManifestTestKit.Manifest(items, "\"defaults\": { \"guidanceScale\": 4 },")));
        Assert.Equal(new[] { 7.5, 6.0 }, await Guidance(ManifestTestKit.Manifest(items, "\"model\": \"hunyuan-dit-v1.2\",")));
    }

    [Fact]
    public async Task Missing_seeds_are_drawn_per_item_recorded_and_stable_across_reads()
    {
        var bytes = Encoding.UTF8.GetBytes(ManifestTestKit.Manifest("""{ "id": "a", "prompt": "p" }, { "id": "b", "prompt": "p" }"""));
        var (_, first) = await RunAsync(bytes);
        var (_, again) = await RunAsync(bytes);
        var (_, changed) = await RunAsync(Encoding.UTF8.GetBytes(ManifestTestKit.Manifest("""{ "id": "a", "prompt": "p" }, { "id": "b", "prompt": "q" }""")));

        Assert.All(first, m => Assert.True(m.Params.SeedWasRandom));
        Assert.NotEqual(first[0].Params.Seed, first[1].Params.Seed);
        Assert.Equal(first.Select(m => m.Params.Seed), again.Select(m => m.Params.Seed));
        Assert.NotEqual(first[0].Params.Seed, changed[0].Params.Seed); // other bytes, other job: other seeds
        Assert.All(first, m => Assert.InRange(m.Params.Seed, 0, long.MaxValue));
    }

    [Fact]
    public async Task Message_ids_are_stable_hex_and_change_with_any_parameter()
    {
        var (_, messages) = await RunAsync(File.ReadAllBytes(ManifestTestKit.TestData("Manifests", "sample.json")));
        var (_, again) = await RunAsync(File.ReadAllBytes(ManifestTestKit.TestData("Manifests", "sample.json")));
        var id = messages[0].ComputeMessageId();

        Assert.Matches("^[0-9a-f]{64}$", id);
        Assert.Equal(messages.Select(m => m.ComputeMessageId()), again.Select(m => m.ComputeMessageId()));
        Assert.Equal(3, messages.Select(m => m.ComputeMessageId()).Distinct().Count());
        Assert.NotEqual(id, (messages[0] with { Params = messages[0].Params with { Steps = 21 } }).ComputeMessageId());
        Assert.NotEqual(id, (messages[0] with { JobId = "other" }).ComputeMessageId());
        Assert.Equal(id, (messages[0] with { Params = messages[0].Params with { } }).ComputeMessageId());
    }

    [Fact]
    public async Task An_invalid_result_is_never_expanded()
    {
        var bytes = Encoding.UTF8.GetBytes(ManifestTestKit.Manifest("""{ "id": "a", "prompt": "p", "steps": 0 }"""));
        var result = await _kit.ValidateAsync(bytes);
        var e = await Assert.ThrowsAsync<InvalidOperationException>(() => _kit.ExpandAsync(bytes, result));
        Assert.Contains("never expanded", e.Message);
    }

    [Fact]
    public async Task Bytes_that_changed_since_validation_are_detected()
    {
        var validatedBytes = Encoding.UTF8.GetBytes(ManifestTestKit.Manifest("""{ "id": "a", "prompt": "p" }"""));
        var result = await _kit.ValidateAsync(validatedBytes);

        var samePromptLength = Encoding.UTF8.GetBytes(ManifestTestKit.Manifest("""{ "id": "a", "prompt": "q" }"""));
        var e = await Assert.ThrowsAsync<ManifestChangedException>(() => _kit.ExpandAsync(samePromptLength, result));
        Assert.Contains("content hash differs", e.Message);

        var nowInvalid = Encoding.UTF8.GetBytes(ManifestTestKit.Manifest("""{ "id": "a", "prompt": "p", "steps": 0 }"""));
        e = await Assert.ThrowsAsync<ManifestChangedException>(() => _kit.ExpandAsync(nowInvalid, result));
        Assert.Contains("items[0].steps", e.Message);

        var truncated = validatedBytes[..^3];
        await Assert.ThrowsAsync<ManifestChangedException>(() => _kit.ExpandAsync(truncated, result));
    }

    [Theory]
    [InlineData("manifest.json", "")]
    [InlineData("campaigns/spring/manifest.json", "campaigns/spring/")]
    public void Inputs_live_in_the_manifests_own_folder(string blob, string folder) => Assert.Equal(folder, ManifestExpander.FolderOf(blob));

    public void Dispose() => _kit.Dispose();
}
