using BatchRender.Model.Autoencoders;
using BatchRender.Model.Loading;
using BatchRender.Model.TextEncoders;
using TorchSharp;
using static TorchSharp.torch;

namespace BatchRender.Model.Tests.TextEncoders;

/// <summary>FromPretrained / SavePretrained of the text encoders and the VAE through the shared strict loader.</summary>
public class PretrainedLoadingTests
{
    private static readonly BertConfig TinyBert = new()
    {
        VocabSize = 50, HiddenSize = 16, NumHiddenLayers = 1, NumAttentionHeads = 2, IntermediateSize = 32, MaxPositionEmbeddings = 20,
    };

    private static readonly T5Config TinyT5 = new() { VocabSize = 40, DModel = 16, DKv = 4, DFf = 24, NumLayers = 2, NumHeads = 4 };

    private static readonly AutoencoderKLConfig TinyVae = new() { BlockOutChannels = [8, 16], LayersPerBlock = 1, NormNumGroups = 4, ScalingFactor = 0.7 };

    private static void AssertSameWeights(nn.Module expected, nn.Module actual)
    {
        var a = actual.state_dict();
        foreach (var (name, t) in expected.state_dict())
            Assert.True(t.cpu().equal(a[name].cpu()).all().item<bool>(), name);
        Assert.Equal(expected.state_dict().Count, a.Count);
    }

    /// <summary>Rewrites a component's weight file with renamed / extra tensors (simulating other checkpoint layouts).</summary>
    private static void RewriteWeights(string dir, string file, Func<string, string> rename, params (string Key, Tensor Value)[] extra)
    {
        var path = Path.Combine(dir, file);
        var tensors = SafetensorsFile.ReadHeader(path).ReadAll();
        var renamed = tensors.Select(kv => KeyValuePair.Create(rename(kv.Key), kv.Value))
            .Concat(extra.Select(e => KeyValuePair.Create(e.Key, e.Value))).ToList();
        SafetensorsFile.Write(path, renamed);
    }

    [Fact]
    public void Bert_round_trip_is_exact_and_reads_legacy_layouts()
    {
        using var tmp = TestDevice.TempDir();
        torch.manual_seed(11);
        var model = new BertModel(TinyBert);
        model.SavePretrained(tmp.Path);
        Assert.True(File.Exists(Path.Combine(tmp.Path, "model.safetensors")));
        var loaded = BertModel.FromPretrained(tmp.Path);
        Assert.True(loaded.HasPooler);
        AssertSameWeights(model, loaded);
        Assert.Equal(TinyBert.HiddenSize, BertConfig.Load(tmp.Path).HiddenSize);

        // Tencent's original layout: "bert." prefix, an old position_ids buffer, no pooler.
        RewriteWeights(tmp.Path, "model.safetensors", k => "bert." + k, ("embeddings.position_ids", arange(20).unsqueeze(0)));
        var noPooler = Path.Combine(tmp.Path, "model.safetensors");
        var kept = SafetensorsFile.ReadHeader(noPooler).ReadAll().Where(kv => !kv.Key.Contains("pooler")).ToList();
        SafetensorsFile.Write(noPooler, kept);
        var legacy = BertModel.FromPretrained(tmp.Path);
        Assert.False(legacy.HasPooler);
        using var _ = no_grad();
        var ids = tensor(new long[] { 1, 5, 7, 2 }).unsqueeze(0);
        var mask = ones(1, 4, dtype: ScalarType.Int64);
        Assert.True(model.forward(ids, mask).equal(legacy.forward(ids, mask)).all().item<bool>());
    }

    [Fact]
    public void T5_reads_the_tied_embedding_under_either_name_and_skips_a_decoder()
    {
        using var tmp = TestDevice.TempDir();
        torch.manual_seed(12);
        var model = new T5EncoderModel(TinyT5);
        model.SavePretrained(tmp.Path);
        AssertSameWeights(model, T5EncoderModel.FromPretrained(tmp.Path));

        RewriteWeights(tmp.Path, "model.safetensors", k => k == "shared.weight" ? "encoder.embed_tokens.weight" : k,
            ("decoder.final_layer_norm.weight", ones(16)), ("lm_head.weight", zeros(40, 16)));
        AssertSameWeights(model, T5EncoderModel.FromPretrained(tmp.Path));

        // both names present (transformers saves both when untied-saving): the duplicate alias is dropped
        RewriteWeights(tmp.Path, "model.safetensors", k => k, ("shared.weight", model.state_dict()["shared.weight"]));
        AssertSameWeights(model, T5EncoderModel.FromPretrained(tmp.Path));
    }

    [Fact]
    public void Vae_round_trip_is_exact_maps_legacy_attention_names_and_names_bad_keys()
    {
        using var tmp = TestDevice.TempDir();
        torch.manual_seed(13);
        var model = new AutoencoderKL(TinyVae);
        model.SavePretrained(tmp.Path);
        var config = AutoencoderKLConfig.Load(tmp.Path);
        Assert.Equal(0.7, config.ScalingFactor);
        Assert.Equal(["DownEncoderBlock2D", "DownEncoderBlock2D"], config.DownBlockTypes);
        AssertSameWeights(model, AutoencoderKL.FromPretrained(tmp.Path));

        string file = "diffusion_pytorch_model.safetensors";
        RewriteWeights(tmp.Path, file, k => k.Replace(".to_q.", ".query.").Replace(".to_out.0.", ".proj_attn."));
        AssertSameWeights(model, AutoencoderKL.FromPretrained(tmp.Path));

        RewriteWeights(tmp.Path, file, k => k == "decoder.conv_in.weight" ? "decoder.conv_in.weights" : k);
        var e = Assert.Throws<WeightLoadException>(() => AutoencoderKL.FromPretrained(tmp.Path));
        Assert.Contains("decoder.conv_in.weights", e.Message);
        Assert.Contains("missing tensor 'decoder.conv_in.weight'", e.Message);
    }
}
