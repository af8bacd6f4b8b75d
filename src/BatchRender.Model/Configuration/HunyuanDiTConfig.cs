using System.Text.Json;
using System.Text.Json.Nodes;
using System.Text.Json.Serialization;
using BatchRender.Model.Loading;

namespace BatchRender.Model.Configuration;

/// <summary>
/// transformer/config.json of HunyuanDiT2DModel (diffusers key names; defaults are diffusers' constructor defaults, so an
/// absent <c>use_style_cond_and_image_meta_size</c> means true, as for v1.0/v1.1). <c>frame_phase_embedding</c> and
/// <c>frame_phase_token</c> are our extensions for video (absent = off).
/// </summary>
public sealed record HunyuanDiTConfig
{
    [JsonPropertyName("num_attention_heads")] public int NumAttentionHeads { get; init; } = 16;
    [JsonPropertyName("attention_head_dim")] public int AttentionHeadDim { get; init; } = 88;
    [JsonPropertyName("in_channels")] public int InChannels { get; init; } = 4;
    [JsonPropertyName("patch_size")] public int PatchSize { get; init; } = 2;
    [JsonPropertyName("activation_fn")] public string ActivationFn { get; init; } = "gelu-approximate";
    [JsonPropertyName("sample_size")] public int SampleSize { get; init; } = 32;
    [JsonPropertyName("hidden_size")] public int HiddenSize { get; init; } = 1152;
    [JsonPropertyName("num_layers")] public int NumLayers { get; init; } = 28;
    [JsonPropertyName("mlp_ratio")] public double MlpRatio { get; init; } = 4.0;
    [JsonPropertyName("learn_sigma")] public bool LearnSigma { get; init; } = true;
    [JsonPropertyName("cross_attention_dim")] public int CrossAttentionDim { get; init; } = 1024;
    [JsonPropertyName("norm_type")] public string NormType { get; init; } = "layer_norm";
    [JsonPropertyName("cross_attention_dim_t5")] public int CrossAttentionDimT5 { get; init; } = 2048;
    [JsonPropertyName("pooled_projection_dim")] public int PooledProjectionDim { get; init; } = 1024;
    [JsonPropertyName("text_len")] public int TextLen { get; init; } = 77;
    [JsonPropertyName("text_len_t5")] public int TextLenT5 { get; init; } = 256;
    [JsonPropertyName("use_style_cond_and_image_meta_size")] public bool UseStyleCondAndImageMetaSize { get; init; } = true;
    /// <summary>Extension: a per-sample frame phase in [0, 1] embedded and added to the timestep embedding.</summary>
    [JsonPropertyName("frame_phase_embedding")] public bool FramePhaseEmbedding { get; init; }
    /// <summary>Extension: the frame phase also as one more token at the end of the cross-attention context. temb
    /// shifts every image token alike, so a phase there must be combined with where a token is by the MLPs; as a context
    /// token it is attended to as the words are, and "moving left to right" plus "a quarter of the way" can meet in
    /// the same attention that places "top left". Needs <see cref="FramePhaseEmbedding"/>.</summary>
    [JsonPropertyName("frame_phase_token")] public bool FramePhaseToken { get; init; }
    /// <summary>Extension: the frame-phase token's embedder also reads the pooled T5 text (the attention pooler's output,
    /// which temb adds too), so the token says where in the clip the frame is *for the motion the prompt names*: a
    /// two-layer MLP meets "moving left to right" with "a quarter of the way". With the phase alone, attention has to
    /// make that product itself, and session 9's model had not learned it: its frames followed the phase the same way
    /// for every direction (an object at an edge at both ends of a clip, in the middle half-way). Needs
    /// <see cref="FramePhaseToken"/>.</summary>
    [JsonPropertyName("frame_phase_token_text")] public bool FramePhaseTokenText { get; init; }

    [JsonIgnore] public int InnerDim => NumAttentionHeads * AttentionHeadDim;
    /// <summary>Tokens of the cross-attention context: BERT ++ T5 (++ the frame-phase token).</summary>
    [JsonIgnore] public int ContextLength => TextLen + TextLenT5 + (FramePhaseToken ? 1 : 0);
    [JsonIgnore] public int OutChannels => LearnSigma ? InChannels * 2 : InChannels;
    /// <summary>int(inner_dim * mlp_ratio), as diffusers computes it (1408 * 4.3637 -> 6144).</summary>
    [JsonIgnore] public int FeedForwardInnerDim => (int)(InnerDim * MlpRatio);

    /// <summary>Hunyuan-DiT v1.2 (Tencent-Hunyuan/HunyuanDiT-v1.2-Diffusers transformer/config.json).</summary>
    public static HunyuanDiTConfig V12 { get; } = new()
    {
        NumAttentionHeads = 16, AttentionHeadDim = 88, InChannels = 4, PatchSize = 2, SampleSize = 128, HiddenSize = 1408,
        NumLayers = 40, MlpRatio = 4.3637, CrossAttentionDim = 1024, CrossAttentionDimT5 = 2048, PooledProjectionDim = 1024,
        TextLen = 77, TextLenT5 = 256, UseStyleCondAndImageMetaSize = false,
    };

    /// <summary>Hunyuan-DiT v1.0/v1.1: v1.2 plus the style and image-meta-size conditions.</summary>
    public static HunyuanDiTConfig V11 { get; } = V12 with { UseStyleCondAndImageMetaSize = true };

    private static readonly JsonSerializerOptions JsonOptions = new() { WriteIndented = true };

    public static HunyuanDiTConfig FromJson(string json, string source = "config.json")
    {
        HunyuanDiTConfig? config;
        try { config = JsonSerializer.Deserialize<HunyuanDiTConfig>(json, JsonOptions); }
        catch (JsonException e) { throw new InvalidDataException($"{source}: invalid HunyuanDiT config: {e.Message}", e); }
        if (config is null) throw new InvalidDataException($"{source}: empty HunyuanDiT config");
        config.Validate(source);
        return config;
    }

    public static HunyuanDiTConfig Load(string componentDirectory)
    {
        var path = Path.Combine(componentDirectory, DiffusersComponent.ConfigFileName);
        if (!File.Exists(path)) throw new FileNotFoundException($"{path}: config.json not found", path);
        return FromJson(File.ReadAllText(path), path);
    }

    /// <summary>The config as diffusers writes it (with _class_name); the frame-phase extensions only when on.</summary>
    public JsonObject ToJsonObject()
    {
        var obj = JsonSerializer.SerializeToNode(this, JsonOptions)!.AsObject();
        if (!FramePhaseEmbedding) obj.Remove("frame_phase_embedding");
        if (!FramePhaseToken) obj.Remove("frame_phase_token");
        if (!FramePhaseTokenText) obj.Remove("frame_phase_token_text");
        var result = new JsonObject { ["_class_name"] = "HunyuanDiT2DModel" };
        foreach (var (k, v) in obj) result[k] = v?.DeepClone();
        return result;
    }

    /// <summary>Throws <see cref="InvalidDataException"/> naming the field when the sizes cannot build a model.</summary>
    public void Validate(string source = "config.json")
    {
        void Require(bool ok, string field, string why)
        {
            if (!ok) throw new InvalidDataException($"{source}: {field}: {why}");
        }
        Require(NumAttentionHeads > 0, "num_attention_heads", "must be positive");
        Require(AttentionHeadDim > 0 && AttentionHeadDim % 4 == 0, "attention_head_dim", "must be a positive multiple of 4 (2D RoPE)");
        Require(HiddenSize == InnerDim, "hidden_size",
                $"{HiddenSize} must equal num_attention_heads x attention_head_dim = {InnerDim}");
        Require(InChannels > 0, "in_channels", "must be positive");
        Require(PatchSize > 0, "patch_size", "must be positive");
        // Blocks 0 .. n/2-2 push a skip and blocks n/2+1 .. n-1 pop one: the counts only match for an even n.
        Require(NumLayers > 0 && NumLayers % 2 == 0, "num_layers", $"{NumLayers} must be positive and even (long skips pair the halves)");
        Require(MlpRatio > 0 && FeedForwardInnerDim > 0, "mlp_ratio", "must give a positive feed-forward width");
        Require(ActivationFn is "gelu-approximate" or "gelu", "activation_fn", $"'{ActivationFn}' is not supported (gelu-approximate or gelu)");
        Require(CrossAttentionDim > 0, "cross_attention_dim", "must be positive");
        Require(CrossAttentionDimT5 > 0 && CrossAttentionDimT5 % 8 == 0, "cross_attention_dim_t5", "must be a positive multiple of 8 (8 pooler heads)");
        Require(PooledProjectionDim > 0, "pooled_projection_dim", "must be positive");
        Require(TextLen > 0, "text_len", "must be positive");
        Require(TextLenT5 > 0, "text_len_t5", "must be positive");
        Require(!FramePhaseToken || FramePhaseEmbedding, "frame_phase_token", "needs frame_phase_embedding (the phase it embeds)");
        Require(!FramePhaseTokenText || FramePhaseToken, "frame_phase_token_text", "needs frame_phase_token (the token it conditions)");
    }
}
