using System.Text.Json.Serialization;
using BatchRender.Model.TextEncoders;

namespace BatchRender.Model.Autoencoders;

/// <summary>diffusers' AutoencoderKL config (vae/config.json). Defaults: the SDXL VAE Hunyuan-DiT ships (HUNYUAN.md 4.7).</summary>
public sealed record AutoencoderKLConfig
{
    [JsonPropertyName("in_channels")] public int InChannels { get; init; } = 3;
    [JsonPropertyName("out_channels")] public int OutChannels { get; init; } = 3;
    [JsonPropertyName("down_block_types")] public string[]? DownBlockTypes { get; init; }
    [JsonPropertyName("up_block_types")] public string[]? UpBlockTypes { get; init; }
    [JsonPropertyName("block_out_channels")] public int[] BlockOutChannels { get; init; } = [128, 256, 512, 512];
    [JsonPropertyName("layers_per_block")] public int LayersPerBlock { get; init; } = 2;
    [JsonPropertyName("act_fn")] public string ActFn { get; init; } = "silu";
    [JsonPropertyName("latent_channels")] public int LatentChannels { get; init; } = 4;
    [JsonPropertyName("norm_num_groups")] public int NormNumGroups { get; init; } = 32;
    [JsonPropertyName("sample_size")] public int SampleSize { get; init; } = 1024;
    [JsonPropertyName("scaling_factor")] public double ScalingFactor { get; init; } = 0.13025;
    [JsonPropertyName("shift_factor")] public double? ShiftFactor { get; init; }
    [JsonPropertyName("force_upcast")] public bool ForceUpcast { get; init; }
    [JsonPropertyName("use_quant_conv")] public bool UseQuantConv { get; init; } = true;
    [JsonPropertyName("use_post_quant_conv")] public bool UsePostQuantConv { get; init; } = true;
    [JsonPropertyName("mid_block_add_attention")] public bool MidBlockAddAttention { get; init; } = true;

    /// <summary>Spatial down-sampling factor between image and latents: 2^(len(block_out_channels) - 1).</summary>
    [JsonIgnore]
    public int ScaleFactor => 1 << (BlockOutChannels.Length - 1);

    public static AutoencoderKLConfig Load(string path) => ConfigJson.Load<AutoencoderKLConfig>(path).Validated(path);

    public static AutoencoderKLConfig Parse(string json, string source = "config.json") =>
        ConfigJson.Parse<AutoencoderKLConfig>(json, source).Validated(source);

    public AutoencoderKLConfig Validated(string source = "config.json")
    {
        int n = BlockOutChannels.Length;
        ConfigJson.Require(n > 0 && BlockOutChannels.All(c => c > 0 && c % NormNumGroups == 0), source, "block_out_channels",
            $"must be non-empty positive multiples of norm_num_groups ({NormNumGroups})");
        ConfigJson.Require(DownBlockTypes is null || (DownBlockTypes.Length == n && DownBlockTypes.All(t => t == "DownEncoderBlock2D")), source,
            "down_block_types", $"must be {n} x DownEncoderBlock2D");
        ConfigJson.Require(UpBlockTypes is null || (UpBlockTypes.Length == n && UpBlockTypes.All(t => t == "UpDecoderBlock2D")), source,
            "up_block_types", $"must be {n} x UpDecoderBlock2D");
        ConfigJson.Require(LayersPerBlock > 0 && LatentChannels > 0 && InChannels > 0 && OutChannels > 0, source,
            "layers_per_block/latent_channels/in_channels/out_channels", "must be positive");
        ConfigJson.Require(ActFn is "silu" or "swish", source, "act_fn", $"'{ActFn}' is not supported (expected silu)");
        ConfigJson.Require(ScalingFactor > 0, source, "scaling_factor", "must be positive");
        return this;
    }
}
