using BatchRender.Model.TextEncoders;
using TorchSharp;
using static TorchSharp.torch;

namespace BatchRender.Model.Tests.TextEncoders;

public class TextEncoderTests
{
    private static readonly BertConfig TinyBert = new()
    {
        VocabSize = 50, HiddenSize = 32, NumHiddenLayers = 2, NumAttentionHeads = 4, IntermediateSize = 64,
        MaxPositionEmbeddings = 40, TypeVocabSize = 2, LayerNormEps = 1e-12,
    };

    private static readonly T5Config TinyT5 = new()
    {
        VocabSize = 60, DModel = 32, DKv = 8, DFf = 48, NumLayers = 2, NumHeads = 4,
        RelativeAttentionNumBuckets = 32, RelativeAttentionMaxDistance = 128, FeedForwardProj = "gated-gelu",
    };

    // Hunyuan-DiT's encoders (HUNYUAN.md 4.4).
    private const string HunyuanBertJson = """
        {"architectures": ["BertModel"], "attention_probs_dropout_prob": 0.1, "hidden_act": "gelu", "hidden_size": 1024,
         "initializer_range": 0.02, "intermediate_size": 4096, "layer_norm_eps": 1e-12, "max_position_embeddings": 512,
         "model_type": "bert", "num_attention_heads": 16, "num_hidden_layers": 24, "pad_token_id": 0,
         "position_embedding_type": "absolute", "torch_dtype": "float32", "type_vocab_size": 2, "vocab_size": 47020}
        """;

    private const string HunyuanMT5Json = """
        {"architectures": ["T5EncoderModel"], "d_ff": 5120, "d_kv": 64, "d_model": 2048, "decoder_start_token_id": 0,
         "dropout_rate": 0.1, "eos_token_id": 1, "feed_forward_proj": "gated-gelu", "is_encoder_decoder": true,
         "layer_norm_epsilon": 1e-06, "model_type": "mt5", "num_decoder_layers": 24, "num_heads": 32, "num_layers": 24,
         "pad_token_id": 0, "relative_attention_max_distance": 128, "relative_attention_num_buckets": 32,
         "tie_word_embeddings": false, "tokenizer_class": "T5Tokenizer", "vocab_size": 250112}
        """;

    private static Dictionary<string, long[]> Shapes(nn.Module m) =>
        m.state_dict().ToDictionary(p => p.Key, p => p.Value.shape); // what savers and loaders see

    private static IEnumerable<(string, long[])> BertKeys(BertConfig c, bool pooler)
    {
        long H = c.HiddenSize, I = c.IntermediateSize;
        yield return ("embeddings.word_embeddings.weight", [c.VocabSize, H]);
        yield return ("embeddings.position_embeddings.weight", [c.MaxPositionEmbeddings, H]);
        yield return ("embeddings.token_type_embeddings.weight", [c.TypeVocabSize, H]);
        yield return ("embeddings.LayerNorm.weight", [H]);
        yield return ("embeddings.LayerNorm.bias", [H]);
        for (int i = 0; i < c.NumHiddenLayers; i++)
        {
            var p = $"encoder.layer.{i}.";
            foreach (var n in new[] { "query", "key", "value" })
            {
                yield return (p + $"attention.self.{n}.weight", [H, H]);
                yield return (p + $"attention.self.{n}.bias", [H]);
            }
            yield return (p + "attention.output.dense.weight", [H, H]);
            yield return (p + "attention.output.dense.bias", [H]);
            yield return (p + "attention.output.LayerNorm.weight", [H]);
            yield return (p + "attention.output.LayerNorm.bias", [H]);
            yield return (p + "intermediate.dense.weight", [I, H]);
            yield return (p + "intermediate.dense.bias", [I]);
            yield return (p + "output.dense.weight", [H, I]);
            yield return (p + "output.dense.bias", [H]);
            yield return (p + "output.LayerNorm.weight", [H]);
            yield return (p + "output.LayerNorm.bias", [H]);
        }
        if (pooler)
        {
            yield return ("pooler.dense.weight", [H, H]);
            yield return ("pooler.dense.bias", [H]);
        }
    }

    private static IEnumerable<(string, long[])> T5Keys(T5Config c)
    {
        long d = c.DModel, inner = c.NumHeads * c.DKv, ff = c.DFf;
        yield return ("shared.weight", [c.VocabSize, d]);
        for (int i = 0; i < c.NumLayers; i++)
        {
            var p = $"encoder.block.{i}.layer.";
            foreach (var n in new[] { "q", "k", "v" }) yield return (p + $"0.SelfAttention.{n}.weight", [inner, d]);
            yield return (p + "0.SelfAttention.o.weight", [d, inner]);
            if (i == 0) yield return (p + "0.SelfAttention.relative_attention_bias.weight", [c.RelativeAttentionNumBuckets, c.NumHeads]);
            yield return (p + "0.layer_norm.weight", [d]);
            yield return (p + "1.DenseReluDense.wi_0.weight", [ff, d]);
            yield return (p + "1.DenseReluDense.wi_1.weight", [ff, d]);
            yield return (p + "1.DenseReluDense.wo.weight", [d, ff]);
            yield return (p + "1.layer_norm.weight", [d]);
        }
        yield return ("encoder.final_layer_norm.weight", [d]);
    }

    private static void AssertSameKeys(IEnumerable<(string Name, long[] Shape)> expected, nn.Module model)
    {
        var actual = Shapes(model);
        var want = expected.ToDictionary(e => e.Name, e => e.Shape);
        Assert.Equal(want.Keys.Order(), actual.Keys.Order());
        foreach (var (name, shape) in want) Assert.True(shape.SequenceEqual(actual[name]), $"{name}: [{string.Join(",", actual[name])}] vs [{string.Join(",", shape)}]");
    }

    // ---- BERT ----

    [Fact]
    public void Bert_parameter_names_are_the_transformers_state_dict_keys()
    {
        AssertSameKeys(BertKeys(TinyBert, pooler: true), new BertModel(TinyBert));
        AssertSameKeys(BertKeys(TinyBert, pooler: false), new BertModel(TinyBert with { AddPoolingLayer = false }));
    }

    [Fact]
    public void Bert_hunyuan_config_builds_on_meta_with_the_expected_size()
    {
        var config = BertConfig.Parse(HunyuanBertJson);
        using var model = new BertModel(config, device: torch.META);
        AssertSameKeys(BertKeys(config, pooler: true), model);
        long total = model.parameters().Sum(p => p.numel());
        Assert.Equal(352_035_840L, total);                       // 351.0M + the 1024x1024 pooler (HUNYUAN.md 5)
        Assert.Equal(350_986_240L, total - (1024 * 1024 + 1024));
    }

    [Fact]
    public void Bert_output_shape_and_padding_does_not_change_real_positions()
    {
        torch.manual_seed(1);
        using var model = new BertModel(TinyBert);
        model.eval();
        using var _ = torch.no_grad();
        var ids = tensor(new long[] { 2, 7, 9, 11, 3 }).unsqueeze(0);
        var padded = cat([ids, zeros(1, 7, dtype: ScalarType.Int64)], 1);
        var mask = cat([ones(1, 5, dtype: ScalarType.Int64), zeros(1, 7, dtype: ScalarType.Int64)], 1);

        var full = model.forward(padded, mask);
        Assert.Equal(new long[] { 1, 12, 32 }, full.shape);
        var alone = model.forward(ids, ones(1, 5, dtype: ScalarType.Int64));
        Assert.True(full[.., ..5].allclose(alone, 1e-5, 1e-5), "padding changed the unpadded outputs");
        Assert.False(model.forward(padded, ones(1, 12, dtype: ScalarType.Int64))[.., ..5].allclose(alone, 1e-5, 1e-5),
            "attending to the padding should change the outputs (the mask must matter)");
        // batch rows are independent
        var batch = model.forward(cat([padded, padded.flip(1)], 0), cat([mask, mask.flip(1)], 0));
        Assert.True(batch[0].allclose(full[0], 1e-5, 1e-5));
    }

    [Fact]
    public void Bert_config_errors_name_the_field()
    {
        var e = Assert.Throws<InvalidDataException>(() => BertConfig.Parse("""{"hidden_size": 100, "num_attention_heads": 16}""", "text_encoder/config.json"));
        Assert.Contains("text_encoder/config.json", e.Message);
        Assert.Contains("hidden_size", e.Message);
        Assert.Throws<ArgumentException>(() => new BertModel(TinyBert).forward(zeros(1, 41, dtype: ScalarType.Int64), ones(1, 41, dtype: ScalarType.Int64)));
    }

    // ---- T5 ----

    [Fact]
    public void T5_parameter_names_are_the_transformers_state_dict_keys()
    {
        AssertSameKeys(T5Keys(TinyT5), new T5EncoderModel(TinyT5));
        Assert.Equal("shared.weight", T5EncoderModel.TiedKeys["encoder.embed_tokens.weight"]);
    }

    [Fact]
    public void MT5_xl_config_builds_on_meta_with_the_expected_size()
    {
        var config = T5Config.Parse(HunyuanMT5Json);
        Assert.Equal("gelu_new", config.DenseActFn);
        using var model = new T5EncoderModel(config, device: torch.META);
        AssertSameKeys(T5Keys(config), model);
        long d = 2048, perLayer = 4 * d * d + 3 * d * 5120 + 2 * d;
        Assert.Equal(250112 * d + 24 * perLayer + 32 * 32 + d, model.parameters().Sum(p => p.numel()));
        Assert.InRange(model.parameters().Sum(p => p.numel()), 1_669_900_000L, 1_670_000_000L); // ~1,669.96M (HUNYUAN.md 5)
    }

    /// <summary>transformers' _relative_position_bucket, bidirectional, written out in scalar form.</summary>
    private static long ReferenceBucket(long relativePosition, int numBuckets, int maxDistance)
    {
        long ret = 0;
        int n = numBuckets / 2;
        if (relativePosition > 0) ret += n;
        long distance = Math.Abs(relativePosition);
        int maxExact = n / 2;
        if (distance < maxExact) return ret + distance;
        long large = maxExact + (long)((float)(MathF.Log(distance / (float)maxExact) / Math.Log(maxDistance / (double)maxExact)) * (n - maxExact));
        return ret + Math.Min(large, n - 1);
    }

    [Theory]
    [InlineData(32, 128)]
    [InlineData(8, 20)]
    public void T5_relative_position_buckets_follow_the_transformers_formula(int numBuckets, int maxDistance)
    {
        var rel = arange(-300, 301, dtype: ScalarType.Int64);
        var buckets = T5Attention.RelativePositionBucket(rel, numBuckets, maxDistance).data<long>().ToArray();
        for (int i = 0; i < buckets.Length; i++)
            Assert.Equal(ReferenceBucket(i - 300, numBuckets, maxDistance), buckets[i]);
        if (numBuckets == 32)
        {
            // Landmarks: 0 -> 0; keys after the query use the upper half; exact below 8; last bucket from ~128 on.
            long B(int r) => buckets[r + 300];
            Assert.Equal(new long[] { 0, 17, 1, 23, 7, 24, 8, 31, 15, 31, 15 },
                new[] { B(0), B(1), B(-1), B(7), B(-7), B(8), B(-8), B(128), B(-128), B(300), B(-300) });
        }
    }

    [Fact]
    public void T5_output_shape_and_padding_does_not_change_real_positions()
    {
        torch.manual_seed(2);
        using var model = new T5EncoderModel(TinyT5);
        model.eval();
        using var _ = torch.no_grad();
        var ids = tensor(new long[] { 5, 9, 13, 17, 1 }).unsqueeze(0);
        var padded = cat([ids, zeros(1, 11, dtype: ScalarType.Int64)], 1);
        var mask = cat([ones(1, 5, dtype: ScalarType.Int64), zeros(1, 11, dtype: ScalarType.Int64)], 1);
        var full = model.forward(padded, mask);
        Assert.Equal(new long[] { 1, 16, 32 }, full.shape);
        var alone = model.forward(ids, ones(1, 5, dtype: ScalarType.Int64));
        Assert.True(full[.., ..5].allclose(alone, 1e-5, 1e-5), "padding changed the unpadded outputs");
        Assert.False(model.forward(padded, ones(1, 16, dtype: ScalarType.Int64))[.., ..5].allclose(alone, 1e-5, 1e-5));
    }

    [Fact]
    public void T5_layer_norm_is_rms_without_mean_subtraction()
    {
        using var norm = new T5LayerNorm(4, 1e-6);
        var x = tensor(new float[] { 1, 2, 3, 4 }).reshape(1, 4);
        var expected = x / Math.Sqrt((1 + 4 + 9 + 16) / 4.0 + 1e-6);
        Assert.True(norm.forward(x).allclose(expected, 1e-6, 1e-6));
    }

    [Fact]
    public void T5_config_rejects_unknown_feed_forward()
    {
        var e = Assert.Throws<InvalidDataException>(() => T5Config.Parse("""{"feed_forward_proj": "gated-gelu-extra"}""", "text_encoder_2/config.json"));
        Assert.Contains("feed_forward_proj", e.Message);
    }
}
