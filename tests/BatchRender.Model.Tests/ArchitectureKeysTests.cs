using BatchRender.Model.Configuration;
using BatchRender.Model.Transformers;
using TorchSharp;
using static TorchSharp.torch;

namespace BatchRender.Model.Tests;

public class ArchitectureKeysTests
{
    private static Dictionary<string, long[]> ReadFixture()
    {
        var lines = File.ReadAllLines(Path.Combine(AppContext.BaseDirectory, "Fixtures", "hunyuan-dit-v1.2-transformer-keys.tsv"));
        return lines.Where(l => !l.StartsWith('#') && l.Length > 0)
                    .Select(l => l.Split('\t'))
                    .ToDictionary(p => p[0], p => p[1].Trim('[', ']').Split(',', StringSplitOptions.TrimEntries).Select(long.Parse).ToArray());
    }

    private static Dictionary<string, long[]> MetaShapes(HunyuanDiTConfig config)
    {
        var model = new HunyuanDiT2DModel(config, torch.device("meta"));
        var shapes = model.state_dict().ToDictionary(kv => kv.Key, kv => kv.Value.shape);
        Assert.All(model.parameters(), p => Assert.Equal(DeviceType.META, p.device_type));
        return shapes;
    }

    [Fact]
    public void V12_BuiltOnMetaDevice_HasExactlyTheDiffusersKeysAndShapes()
    {
        var expected = ReadFixture();
        var actual = MetaShapes(HunyuanDiTConfig.V12);
        Assert.Equal(1544, expected.Count);
        var missing = expected.Keys.Except(actual.Keys).ToList();
        var extra = actual.Keys.Except(expected.Keys).ToList();
        Assert.True(missing.Count == 0 && extra.Count == 0, $"missing: {string.Join(", ", missing.Take(10))}; extra: {string.Join(", ", extra.Take(10))}");
        foreach (var (key, shape) in expected) Assert.True(shape.SequenceEqual(actual[key]), $"{key}: expected [{string.Join(",", shape)}] got [{string.Join(",", actual[key])}]");
        Assert.Equal(1_499_952_032L, actual.Values.Sum(s => s.Aggregate(1L, (a, b) => a * b)));
    }

    [Fact]
    public void V11_BuiltOnMetaDevice_AddsStyleEmbedderAndWiderExtraEmbedder()
    {
        var actual = MetaShapes(HunyuanDiTConfig.V11);
        Assert.Equal(1545, actual.Count);
        Assert.Equal(1_516_534_048L, actual.Values.Sum(s => s.Aggregate(1L, (a, b) => a * b)));
        Assert.Equal([1L, 1408], actual["time_extra_emb.style_embedder.weight"]);
        Assert.Equal([5632L, 3968], actual["time_extra_emb.extra_embedder.linear_1.weight"]);
    }

    [Fact]
    public void ConfigJson_AbsentStyleFlagMeansTrue_AndV12ConfigParses()
    {
        const string v10 = """
            {"_class_name": "HunyuanDiT2DModel", "_diffusers_version": "0.28.1", "activation_fn": "gelu-approximate",
             "attention_head_dim": 88, "cross_attention_dim": 1024, "cross_attention_dim_t5": 2048, "hidden_size": 1408,
             "in_channels": 4, "learn_sigma": true, "mlp_ratio": 4.3637, "norm_type": "layer_norm", "num_attention_heads": 16,
             "num_layers": 40, "patch_size": 2, "pooled_projection_dim": 1024, "sample_size": 128, "text_len": 77, "text_len_t5": 256}
            """;
        var config = HunyuanDiTConfig.FromJson(v10);
        Assert.True(config.UseStyleCondAndImageMetaSize);
        Assert.Equal(HunyuanDiTConfig.V11, config);
        Assert.Equal(6144, config.FeedForwardInnerDim);
        var v12 = HunyuanDiTConfig.FromJson(v10.Replace("\"text_len_t5\": 256}", "\"text_len_t5\": 256, \"use_style_cond_and_image_meta_size\": false}"));
        Assert.Equal(HunyuanDiTConfig.V12, v12);
        Assert.Equal(v12, HunyuanDiTConfig.FromJson(v12.ToJsonObject().ToJsonString()));
    }

    [Fact]
    public void ConfigJson_InconsistentSizes_FailNamingTheField()
    {
        var e = Assert.Throws<InvalidDataException>(() => HunyuanDiTConfig.FromJson("""{"hidden_size": 100, "num_attention_heads": 16, "attention_head_dim": 88}""", "x/config.json"));
        Assert.Contains("x/config.json: hidden_size", e.Message);
        e = Assert.Throws<InvalidDataException>(() => HunyuanDiTConfig.FromJson("""{"hidden_size": 1408, "activation_fn": "geglu", "attention_head_dim": 88}"""));
        Assert.Contains("activation_fn", e.Message);
    }

    [Fact]
    public void FramePhaseExtension_AddsOnlyItsTwoLinears()
    {
        var plain = MetaShapes(SmallModels.Config());
        var withPhase = MetaShapes(SmallModels.Config(framePhase: true));
        Assert.Equal(
            ["time_extra_emb.frame_phase_embedder.linear_1.bias", "time_extra_emb.frame_phase_embedder.linear_1.weight",
             "time_extra_emb.frame_phase_embedder.linear_2.bias", "time_extra_emb.frame_phase_embedder.linear_2.weight"],
            withPhase.Keys.Except(plain.Keys).Order(StringComparer.Ordinal));
        Assert.Empty(plain.Keys.Except(withPhase.Keys));
    }

    [Fact]
    public void FramePhaseToken_AddsOnlyItsEmbedder_AndNeedsThePhaseEmbedding()
    {
        var withPhase = MetaShapes(SmallModels.Config(framePhase: true));
        var withToken = MetaShapes(SmallModels.Config(framePhase: true, framePhaseToken: true));
        Assert.Equal(
            ["frame_phase_token_embedder.linear_1.bias", "frame_phase_token_embedder.linear_1.weight",
             "frame_phase_token_embedder.linear_2.bias", "frame_phase_token_embedder.linear_2.weight"],
            withToken.Keys.Except(withPhase.Keys).Order(StringComparer.Ordinal));
        Assert.Equal([24L, 256], withToken["frame_phase_token_embedder.linear_1.weight"]);          // sinusoid -> cross_attention_dim
        Assert.Empty(withPhase.Keys.Except(withToken.Keys));

        var e = Assert.Throws<InvalidDataException>(() => SmallModels.Config(framePhaseToken: true).Validate("t/config.json"));
        Assert.Contains("t/config.json: frame_phase_token", e.Message);
        var json = SmallModels.Config(framePhase: true, framePhaseToken: true).ToJsonObject();
        Assert.True(json["frame_phase_token"]!.GetValue<bool>());
        Assert.Equal(SmallModels.Config(framePhase: true, framePhaseToken: true), HunyuanDiTConfig.FromJson(json.ToJsonString()));
        Assert.False(SmallModels.Config(framePhase: true).ToJsonObject().ContainsKey("frame_phase_token"));
    }

    [Fact]
    public void FramePhaseTokenText_WidensOnlyTheTokenEmbeddersInput_AndNeedsTheToken()
    {
        var withToken = MetaShapes(SmallModels.Config(framePhase: true, framePhaseToken: true));
        var withText = MetaShapes(SmallModels.Config(framePhase: true, framePhaseToken: true, framePhaseTokenText: true));
        Assert.Equal(withToken.Keys.Order(StringComparer.Ordinal), withText.Keys.Order(StringComparer.Ordinal));
        Assert.Equal([24L, 256 + 20], withText["frame_phase_token_embedder.linear_1.weight"]);      // sinusoid ++ pooled text
        Assert.Equal(["frame_phase_token_embedder.linear_1.weight"],
            withText.Where(kv => !kv.Value.SequenceEqual(withToken[kv.Key])).Select(kv => kv.Key));

        var e = Assert.Throws<InvalidDataException>(() =>
            SmallModels.Config(framePhase: true, framePhaseTokenText: true).Validate("t/config.json"));
        Assert.Contains("t/config.json: frame_phase_token_text", e.Message);
        var config = SmallModels.Config(framePhase: true, framePhaseToken: true, framePhaseTokenText: true);
        Assert.True(config.ToJsonObject()["frame_phase_token_text"]!.GetValue<bool>());
        Assert.Equal(config, HunyuanDiTConfig.FromJson(config.ToJsonObject().ToJsonString()));
        Assert.False(SmallModels.Config(framePhase: true, framePhaseToken: true).ToJsonObject().ContainsKey("frame_phase_token_text"));
    }
}
