using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;
using static TorchSharp.torch.nn;
using F = TorchSharp.torch.nn.functional;

namespace BatchRender.Model.Autoencoders;

// The building blocks of diffusers' VAE Encoder/Decoder (resnet.py, downsampling.py, upsampling.py,
// attention_processor.py, unet_2d_blocks.py) in the configuration AutoencoderKL uses: no time embedding, GroupNorm eps
// 1e-6, SiLU, output scale factor 1. Field names are diffusers' state-dict keys.

/// <summary>Two GroupNorm-SiLU-Conv3x3 stages with a residual (1x1 conv_shortcut when the channel count changes).</summary>
public sealed class ResnetBlock2D : Module<Tensor, Tensor>
{
    private readonly GroupNorm norm1, norm2;
    private readonly Conv2d conv1, conv2;
    private readonly Conv2d? conv_shortcut;

    public ResnetBlock2D(int inChannels, int outChannels, int groups, Device? device = null, ScalarType? dtype = null) : base(nameof(ResnetBlock2D))
    {
        norm1 = VaeNorm.Create(groups, inChannels, device, dtype);
        conv1 = Conv2d(inChannels, outChannels, 3, stride: 1, padding: 1, device: device, dtype: dtype);
        norm2 = VaeNorm.Create(groups, outChannels, device, dtype);
        conv2 = Conv2d(outChannels, outChannels, 3, stride: 1, padding: 1, device: device, dtype: dtype);
        if (inChannels != outChannels) conv_shortcut = Conv2d(inChannels, outChannels, 1, device: device, dtype: dtype);
        RegisterComponents();
    }

    public override Tensor forward(Tensor x)
    {
        using var scope = NewDisposeScope();
        var h = conv1.forward(F.silu(norm1.forward(x)));
        h = conv2.forward(F.silu(norm2.forward(h)));
        var shortcut = conv_shortcut is null ? x : conv_shortcut.forward(x);
        return (shortcut + h).MoveToOuterDisposeScope();
    }
}

/// <summary>
/// Single-head self-attention over all pixels (diffusers' Attention built from the old VAE AttnBlock): GroupNorm, q/k/v
/// projections per pixel, softmax(q k^T / sqrt(C)) v, output projection, residual.
/// </summary>
public sealed class VaeAttentionBlock : Module<Tensor, Tensor>
{
    private readonly GroupNorm group_norm;
    private readonly Linear to_q, to_k, to_v;
    private readonly ModuleList<Module<Tensor, Tensor>> to_out;

    public VaeAttentionBlock(int channels, int groups, Device? device = null, ScalarType? dtype = null) : base(nameof(VaeAttentionBlock))
    {
        group_norm = VaeNorm.Create(groups, channels, device, dtype);
        to_q = Linear(channels, channels, device: device, dtype: dtype);
        to_k = Linear(channels, channels, device: device, dtype: dtype);
        to_v = Linear(channels, channels, device: device, dtype: dtype);
        to_out = ModuleList<Module<Tensor, Tensor>>(Linear(channels, channels, device: device, dtype: dtype)); // to_out.0 (to_out.1 is dropout)
        RegisterComponents();
    }

    /// <param name="x">[B, C, H, W]</param>
    public override Tensor forward(Tensor x)
    {
        using var scope = NewDisposeScope();
        long B = x.shape[0], C = x.shape[1], H = x.shape[2], W = x.shape[3];
        var tokens = group_norm.forward(x).view(B, C, H * W).transpose(1, 2);        // [B, HW, C]
        Tensor OneHead(Tensor t) => t.unsqueeze(1);                                       // [B, 1, HW, C]
        var attended = F.scaled_dot_product_attention(OneHead(to_q.forward(tokens)), OneHead(to_k.forward(tokens)), OneHead(to_v.forward(tokens)));
        var output = to_out[0].forward(attended.squeeze(1));                              // [B, HW, C]
        return (output.transpose(1, 2).reshape(B, C, H, W) + x).MoveToOuterDisposeScope();
    }
}

/// <summary>Stride-2 3x3 conv after padding right and bottom by one (diffusers' Downsample2D with padding 0).</summary>
public sealed class Downsample2D : Module<Tensor, Tensor>
{
    private readonly Conv2d conv;

    public Downsample2D(int channels, Device? device = null, ScalarType? dtype = null) : base(nameof(Downsample2D))
    {
        conv = Conv2d(channels, channels, 3, stride: 2, padding: 0L, device: device, dtype: dtype);
        RegisterComponents();
    }

    public override Tensor forward(Tensor x)
    {
        using var padded = F.pad(x, [0, 1, 0, 1], PaddingModes.Constant, 0);
        return conv.forward(padded);
    }
}

/// <summary>Nearest-neighbour 2x up-sampling then a 3x3 conv (diffusers' Upsample2D with use_conv).</summary>
public sealed class Upsample2D : Module<Tensor, Tensor>
{
    private readonly Conv2d conv;

    public Upsample2D(int channels, Device? device = null, ScalarType? dtype = null) : base(nameof(Upsample2D))
    {
        conv = Conv2d(channels, channels, 3, stride: 1, padding: 1, device: device, dtype: dtype);
        RegisterComponents();
    }

    public override Tensor forward(Tensor x)
    {
        using var scope = NewDisposeScope();
        // upsample_nearest2d has no bfloat16 kernel on some backends: diffusers goes through float32 there.
        var input = x.dtype == ScalarType.BFloat16 ? x.to_type(ScalarType.Float32) : x;
        var up = F.interpolate(input, scale_factor: [2.0, 2.0], mode: InterpolationMode.Nearest).to_type(x.dtype);
        return conv.forward(up).MoveToOuterDisposeScope();
    }
}

/// <summary>Encoder stage: resnets, then (except the last stage) a stride-2 down-sampler.</summary>
public sealed class DownEncoderBlock2D : Module<Tensor, Tensor>
{
    private readonly ModuleList<ResnetBlock2D> resnets;
    private readonly ModuleList<Downsample2D>? downsamplers;

    public DownEncoderBlock2D(int inChannels, int outChannels, int numLayers, int groups, bool addDownsample, Device? device = null, ScalarType? dtype = null)
        : base(nameof(DownEncoderBlock2D))
    {
        resnets = ModuleList(Enumerable.Range(0, numLayers)
            .Select(i => new ResnetBlock2D(i == 0 ? inChannels : outChannels, outChannels, groups, device, dtype)).ToArray());
        if (addDownsample) downsamplers = ModuleList(new Downsample2D(outChannels, device, dtype));
        RegisterComponents();
    }

    public override Tensor forward(Tensor x) => Sequential.Run(x, resnets, downsamplers);
}

/// <summary>Decoder stage: resnets, then (except the last stage) a 2x up-sampler.</summary>
public sealed class UpDecoderBlock2D : Module<Tensor, Tensor>
{
    private readonly ModuleList<ResnetBlock2D> resnets;
    private readonly ModuleList<Upsample2D>? upsamplers;

    public UpDecoderBlock2D(int inChannels, int outChannels, int numLayers, int groups, bool addUpsample, Device? device = null, ScalarType? dtype = null)
        : base(nameof(UpDecoderBlock2D))
    {
        resnets = ModuleList(Enumerable.Range(0, numLayers)
            .Select(i => new ResnetBlock2D(i == 0 ? inChannels : outChannels, outChannels, groups, device, dtype)).ToArray());
        if (addUpsample) upsamplers = ModuleList(new Upsample2D(outChannels, device, dtype));
        RegisterComponents();
    }

    public override Tensor forward(Tensor x) => Sequential.Run(x, resnets, upsamplers);
}

/// <summary>Bottleneck: resnet, attention, resnet (diffusers' UNetMidBlock2D without time embedding).</summary>
public sealed class UNetMidBlock2D : Module<Tensor, Tensor>
{
    private readonly ModuleList<ResnetBlock2D> resnets;
    private readonly ModuleList<VaeAttentionBlock>? attentions;

    public UNetMidBlock2D(int channels, int groups, bool addAttention, Device? device = null, ScalarType? dtype = null) : base(nameof(UNetMidBlock2D))
    {
        resnets = ModuleList(new ResnetBlock2D(channels, channels, groups, device, dtype), new ResnetBlock2D(channels, channels, groups, device, dtype));
        if (addAttention) attentions = ModuleList(new VaeAttentionBlock(channels, groups, device, dtype));
        RegisterComponents();
    }

    public override Tensor forward(Tensor x)
    {
        using var scope = NewDisposeScope();
        var h = resnets[0].forward(x);
        if (attentions is not null) h = attentions[0].forward(h);
        return resnets[1].forward(h).MoveToOuterDisposeScope();
    }
}

internal static class VaeNorm
{
    /// <summary>GroupNorm with eps 1e-6 and torch's affine initialisation (weight 1, bias 0). TorchSharp 0.107's
    /// nn.GroupNorm leaves its affine parameters uninitialised, so they are set here (skipped on the meta device).</summary>
    public static GroupNorm Create(int groups, int channels, Device? device, ScalarType? dtype)
    {
        var norm = nn.GroupNorm(groups, channels, eps: 1e-6, affine: true, device: device, dtype: dtype);
        if (norm.weight!.device_type != DeviceType.META)
        {
            using var _ = no_grad();
            norm.weight.fill_(1.0);
            norm.bias!.zero_();
        }
        return norm;
    }
}

internal static class Sequential
{
    /// <summary>Runs module lists in order, freeing each intermediate activation as soon as it is consumed.</summary>
    public static Tensor Run(Tensor x, params IEnumerable<Module<Tensor, Tensor>>?[] stages)
    {
        Tensor h = x;
        foreach (var stage in stages)
        {
            if (stage is null) continue;
            foreach (var module in stage)
            {
                var next = module.forward(h);
                if (!ReferenceEquals(h, x)) h.Dispose();
                h = next;
            }
        }
        return ReferenceEquals(h, x) ? x.alias() : h;
    }
}
