using System.Text.Json.Serialization;

namespace BatchRender.Model.TextEncoders;

/// <summary>transformers' BertConfig as stored in text_encoder/config.json (defaults: bert-base).</summary>
public sealed record BertConfig
{
    [JsonPropertyName("vocab_size")] public int VocabSize { get; init; } = 30522;
    [JsonPropertyName("hidden_size")] public int HiddenSize { get; init; } = 768;
    [JsonPropertyName("num_hidden_layers")] public int NumHiddenLayers { get; init; } = 12;
    [JsonPropertyName("num_attention_heads")] public int NumAttentionHeads { get; init; } = 12;
    [JsonPropertyName("intermediate_size")] public int IntermediateSize { get; init; } = 3072;
    /// <summary>"gelu" (erf) | "gelu_new" / "gelu_pytorch_tanh" (tanh approximation) | "relu".</summary>
    [JsonPropertyName("hidden_act")] public string HiddenAct { get; init; } = "gelu";
    [JsonPropertyName("max_position_embeddings")] public int MaxPositionEmbeddings { get; init; } = 512;
    [JsonPropertyName("type_vocab_size")] public int TypeVocabSize { get; init; } = 2;
    [JsonPropertyName("layer_norm_eps")] public double LayerNormEps { get; init; } = 1e-12;
    [JsonPropertyName("pad_token_id")] public int PadTokenId { get; init; }
    /// <summary>Only "absolute" is supported (what Hunyuan-DiT's BERT uses).</summary>
    [JsonPropertyName("position_embedding_type")] public string PositionEmbeddingType { get; init; } = "absolute";
    /// <summary>Not a transformers key: whether the model has pooler.dense (set from the checkpoint's keys).</summary>
    [JsonIgnore] public bool AddPoolingLayer { get; init; } = true;

    [JsonIgnore]
    public int HeadDim => HiddenSize / NumAttentionHeads;

    public static BertConfig Load(string path) => ConfigJson.Load<BertConfig>(path).Validated(path);

    public static BertConfig Parse(string json, string source = "config.json") => ConfigJson.Parse<BertConfig>(json, source).Validated(source);

    public BertConfig Validated(string source = "config.json")
    {
        ConfigJson.Require(HiddenSize > 0 && NumAttentionHeads > 0 && HiddenSize % NumAttentionHeads == 0, source, "hidden_size",
            $"({HiddenSize}) must be a positive multiple of num_attention_heads ({NumAttentionHeads})");
        ConfigJson.Require(NumHiddenLayers > 0, source, "num_hidden_layers", "must be positive");
        ConfigJson.Require(VocabSize > 0 && IntermediateSize > 0 && MaxPositionEmbeddings > 0 && TypeVocabSize > 0, source,
            "vocab_size/intermediate_size/max_position_embeddings/type_vocab_size", "must be positive");
        ConfigJson.Require(HiddenAct is "gelu" or "gelu_new" or "gelu_pytorch_tanh" or "relu", source, "hidden_act",
            $"'{HiddenAct}' is not supported (expected gelu, gelu_new or relu)");
        ConfigJson.Require(PositionEmbeddingType == "absolute", source, "position_embedding_type",
            $"'{PositionEmbeddingType}' is not supported (expected absolute)");
        return this;
    }
}
