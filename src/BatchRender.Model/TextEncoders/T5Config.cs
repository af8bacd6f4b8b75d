using System.Text.Json.Serialization;

namespace BatchRender.Model.TextEncoders;

/// <summary>transformers' T5Config / MT5Config as stored in text_encoder_2/config.json (defaults: mT5-XL's encoder).</summary>
public sealed record T5Config
{
    [JsonPropertyName("vocab_size")] public int VocabSize { get; init; } = 250112;
    [JsonPropertyName("d_model")] public int DModel { get; init; } = 2048;
    [JsonPropertyName("d_kv")] public int DKv { get; init; } = 64;
    [JsonPropertyName("d_ff")] public int DFf { get; init; } = 5120;
    [JsonPropertyName("num_layers")] public int NumLayers { get; init; } = 24;
    [JsonPropertyName("num_heads")] public int NumHeads { get; init; } = 32;
    [JsonPropertyName("relative_attention_num_buckets")] public int RelativeAttentionNumBuckets { get; init; } = 32;
    [JsonPropertyName("relative_attention_max_distance")] public int RelativeAttentionMaxDistance { get; init; } = 128;
    [JsonPropertyName("layer_norm_epsilon")] public double LayerNormEpsilon { get; init; } = 1e-6;
    /// <summary>"gated-gelu" (mT5, T5 v1.1: gelu_new, wi_0/wi_1), "relu" (original T5: wi), or "[gated-]act".</summary>
    [JsonPropertyName("feed_forward_proj")] public string FeedForwardProj { get; init; } = "gated-gelu";
    [JsonPropertyName("pad_token_id")] public int PadTokenId { get; init; }
    [JsonPropertyName("eos_token_id")] public int EosTokenId { get; init; } = 1;

    [JsonIgnore]
    public bool IsGatedAct => FeedForwardProj.StartsWith("gated-", StringComparison.Ordinal);

    /// <summary>The activation name as transformers resolves it ("gated-gelu" means gelu_new, the tanh form).</summary>
    [JsonIgnore]
    public string DenseActFn => FeedForwardProj == "gated-gelu" ? "gelu_new" : FeedForwardProj.Split('-')[^1];

    public static T5Config Load(string path) => ConfigJson.Load<T5Config>(path).Validated(path);

    public static T5Config Parse(string json, string source = "config.json") => ConfigJson.Parse<T5Config>(json, source).Validated(source);

    public T5Config Validated(string source = "config.json")
    {
        ConfigJson.Require(DModel > 0 && DKv > 0 && DFf > 0 && NumHeads > 0 && NumLayers > 0 && VocabSize > 0, source,
            "d_model/d_kv/d_ff/num_heads/num_layers/vocab_size", "must be positive");
        ConfigJson.Require(RelativeAttentionNumBuckets >= 4 && RelativeAttentionMaxDistance > RelativeAttentionNumBuckets / 4, source,
            "relative_attention_num_buckets", $"({RelativeAttentionNumBuckets}) / max_distance ({RelativeAttentionMaxDistance}) do not form a bucket table");
        var parts = FeedForwardProj.Split('-');
        ConfigJson.Require((parts.Length == 1 || (parts.Length == 2 && parts[0] == "gated")) && DenseActFn is "gelu_new" or "gelu" or "relu" or "silu",
            source, "feed_forward_proj", $"'{FeedForwardProj}' is not supported (expected gated-gelu, gated-silu, relu or gelu)");
        return this;
    }
}
