using System.Text.Json.Nodes;
using BatchRender.Model.Loading;
using BatchRender.Model.TextEncoders;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;
using static TorchSharp.torch.nn;
using F = TorchSharp.torch.nn.functional;

namespace BatchRender.Model.Autoencoders;

/// <summary>diffusers' VAE Encoder: image [B, 3, H, W] -> Gaussian moments [B, 2 x latent, H/f, W/f] (mean, log-variance).</summary>
public sealed class VaeEncoder : Module<Tensor, Tensor>
{
    private readonly Conv2d conv_in, conv_out;
    private readonly ModuleList<DownEncoderBlock2D> down_blocks;
    private readonly UNetMidBlock2D mid_block;
    private readonly GroupNorm conv_norm_out;

    public VaeEncoder(AutoencoderKLConfig c, Device? device = null, ScalarType? dtype = null) : base(nameof(VaeEncoder))
    {
        var ch = c.BlockOutChannels;
        conv_in = Conv2d(c.InChannels, ch[0], 3, stride: 1, padding: 1, device: device, dtype: dtype);
        down_blocks = ModuleList(Enumerable.Range(0, ch.Length).Select(i => new DownEncoderBlock2D(
            i == 0 ? ch[0] : ch[i - 1], ch[i], c.LayersPerBlock, c.NormNumGroups, addDownsample: i < ch.Length - 1, device, dtype)).ToArray());
        mid_block = new UNetMidBlock2D(ch[^1], c.NormNumGroups, c.MidBlockAddAttention, device, dtype);
        conv_norm_out = VaeNorm.Create(c.NormNumGroups, ch[^1], device, dtype);
        conv_out = Conv2d(ch[^1], 2 * c.LatentChannels, 3, padding: 1, device: device, dtype: dtype); // double_z
        RegisterComponents();
    }

    public override Tensor forward(Tensor image)
    {
        using var scope = NewDisposeScope();
        var h = Sequential.Run(conv_in.forward(image), down_blocks, [mid_block]);
        return conv_out.forward(F.silu(conv_norm_out.forward(h))).MoveToOuterDisposeScope();
    }
}

/// <summary>diffusers' VAE Decoder: latents [B, latent, h, w] -> image [B, 3, h x f, w x f] in about [-1, 1].</summary>
public sealed class VaeDecoder : Module<Tensor, Tensor>
{
    private readonly Conv2d conv_in, conv_out;
    private readonly UNetMidBlock2D mid_block;
    private readonly ModuleList<UpDecoderBlock2D> up_blocks;
    private readonly GroupNorm conv_norm_out;

    public VaeDecoder(AutoencoderKLConfig c, Device? device = null, ScalarType? dtype = null) : base(nameof(VaeDecoder))
    {
        var reversed = c.BlockOutChannels.Reverse().ToArray();
        conv_in = Conv2d(c.LatentChannels, reversed[0], 3, stride: 1, padding: 1, device: device, dtype: dtype);
        mid_block = new UNetMidBlock2D(reversed[0], c.NormNumGroups, c.MidBlockAddAttention, device, dtype);
        up_blocks = ModuleList(Enumerable.Range(0, reversed.Length).Select(i => new UpDecoderBlock2D(
            i == 0 ? reversed[0] : reversed[i - 1], reversed[i], c.LayersPerBlock + 1, c.NormNumGroups, addUpsample: i < reversed.Length - 1, device, dtype)).ToArray());
        conv_norm_out = VaeNorm.Create(c.NormNumGroups, reversed[^1], device, dtype);
        conv_out = Conv2d(reversed[^1], c.OutChannels, 3, padding: 1, device: device, dtype: dtype);
        RegisterComponents();
    }

    public override Tensor forward(Tensor latents)
    {
        using var scope = NewDisposeScope();
        var h = Sequential.Run(conv_in.forward(latents), [mid_block], up_blocks);
        return conv_out.forward(F.silu(conv_norm_out.forward(h))).MoveToOuterDisposeScope();
    }
}

/// <summary>
/// diffusers' AutoencoderKL (the SDXL VAE layout Hunyuan-DiT uses). <see cref="Encode"/> and <see cref="Decode"/> work
/// in the diffusion model's latent space: latents = (z - shift_factor) x scaling_factor, and back.
/// </summary>
public sealed class AutoencoderKL : Module<Tensor, Tensor>
{
    private readonly VaeEncoder encoder;
    private readonly VaeDecoder decoder;
    private readonly Conv2d? quant_conv, post_quant_conv;

    /// <param name="device">where parameters are created; <c>torch.META</c> builds the structure without memory.</param>
    public AutoencoderKL(AutoencoderKLConfig config, Device? device = null, ScalarType? dtype = null) : base(nameof(AutoencoderKL))
    {
        Config = config.Validated();
        encoder = new VaeEncoder(config, device, dtype);
        decoder = new VaeDecoder(config, device, dtype);
        int z = config.LatentChannels;
        if (config.UseQuantConv) quant_conv = Conv2d(2 * z, 2 * z, 1, device: device, dtype: dtype);
        if (config.UsePostQuantConv) post_quant_conv = Conv2d(z, z, 1, device: device, dtype: dtype);
        RegisterComponents();
    }

    public AutoencoderKLConfig Config { get; }

    /// <summary>
    /// Loads a diffusers vae/ folder (config.json + diffusion_pytorch_model.safetensors), strictly. Mid-block attention
    /// weights saved under the old diffusers names (query/key/value/proj_attn) are mapped to to_q/to_k/to_v/to_out.0.
    /// </summary>
    public static AutoencoderKL FromPretrained(string componentDirectory, Device? device = null, ScalarType? dtype = null)
    {
        var model = new AutoencoderKL(AutoencoderKLConfig.Load(componentDirectory), device, dtype);
        DiffusersComponent.LoadStateDict(model, componentDirectory, options: new StateDictLoadOptions { MapFileKey = MapLegacyAttentionKey });
        model.eval();
        return model;
    }

    /// <summary>Writes config.json + diffusion_pytorch_model.safetensors in the diffusers layout.</summary>
    public void SavePretrained(string componentDirectory, ScalarType? dtype = null) =>
        DiffusersComponent.Save(this, componentDirectory, PretrainedComponent.ToJson(Config, ("_class_name", "AutoencoderKL"),
            ("down_block_types", new JsonArray(Config.BlockOutChannels.Select(_ => (JsonNode)"DownEncoderBlock2D").ToArray())),
            ("up_block_types", new JsonArray(Config.BlockOutChannels.Select(_ => (JsonNode)"UpDecoderBlock2D").ToArray()))), dtype: dtype);

    private static string MapLegacyAttentionKey(string key)
    {
        foreach (var (legacy, current) in new[] { (".query.", ".to_q."), (".key.", ".to_k."), (".value.", ".to_v."), (".proj_attn.", ".to_out.0.") })
            if (key.Contains(".attentions.", StringComparison.Ordinal) && key.Contains(legacy, StringComparison.Ordinal))
                return key.Replace(legacy, current, StringComparison.Ordinal);
        return key;
    }

    /// <summary>Image-to-latent size ratio f = 2^(len(block_out_channels) - 1).</summary>
    public int ScaleFactor => Config.ScaleFactor;

    /// <summary>Gaussian posterior parameters (mean, log-variance clamped to [-30, 20]), each [B, latent, H/f, W/f].</summary>
    public (Tensor Mean, Tensor LogVar) EncodeDistribution(Tensor image)
    {
        CheckImage(image);
        using var scope = NewDisposeScope();
        var moments = encoder.forward(image);
        if (quant_conv is not null) moments = quant_conv.forward(moments);
        var chunks = moments.chunk(2, 1);
        var mean = chunks[0].MoveToOuterDisposeScope();
        var logVar = chunks[1].clamp(-30.0, 20.0).MoveToOuterDisposeScope();
        return (mean, logVar);
    }

    /// <summary>Encodes an image batch [B, 3, H, W] in [-1, 1] to scaled latents [B, latent, H/f, W/f]: the posterior
    /// mean, or a sample mean + std x N(0, 1) drawn from <paramref name="generator"/> when <paramref name="sample"/>.</summary>
    public Tensor Encode(Tensor image, Generator? generator = null, bool sample = false)
    {
        using var scope = NewDisposeScope();
        var (mean, logVar) = EncodeDistribution(image);
        var z = mean;
        if (sample)
        {
            var device = generator?.device ?? mean.device;
            var noise = randn(mean.shape, mean.dtype, device, generator: generator).to(mean.device);
            z = mean + (0.5 * logVar).exp() * noise;
        }
        return ((z - (Config.ShiftFactor ?? 0.0)) * Config.ScalingFactor).MoveToOuterDisposeScope();
    }

    /// <summary>Decodes scaled latents [B, latent, h, w] to an image [B, 3, h x f, w x f] in about [-1, 1] (not clamped).</summary>
    public Tensor Decode(Tensor latents)
    {
        if (latents.dim() != 4 || latents.shape[1] != Config.LatentChannels)
            throw new ArgumentException($"VAE decode: latents [B, {Config.LatentChannels}, h, w] expected, got [{string.Join(", ", latents.shape)}]");
        using var scope = NewDisposeScope();
        var z = latents / Config.ScalingFactor + (Config.ShiftFactor ?? 0.0);
        if (post_quant_conv is not null) z = post_quant_conv.forward(z);
        return decoder.forward(z).MoveToOuterDisposeScope();
    }

    /// <summary>Reconstruction through the posterior mean: Decode(Encode(image)).</summary>
    public override Tensor forward(Tensor image)
    {
        using var latents = Encode(image);
        return Decode(latents);
    }

    private void CheckImage(Tensor image)
    {
        if (image.dim() != 4 || image.shape[1] != Config.InChannels)
            throw new ArgumentException($"VAE encode: image [B, {Config.InChannels}, H, W] expected, got [{string.Join(", ", image.shape)}]");
        if (image.shape[2] % ScaleFactor != 0 || image.shape[3] % ScaleFactor != 0)
            throw new ArgumentException($"VAE encode: height and width must be multiples of {ScaleFactor}, got {image.shape[2]} x {image.shape[3]}");
    }
}
