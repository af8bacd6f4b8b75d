using TorchSharp;
using static TorchSharp.torch;

namespace BatchRender.Model.Embeddings;

/// <summary>Sinusoidal embeddings of scalars (diffusers get_timestep_embedding / Timesteps).</summary>
public static class Timesteps
{
    /// <summary>
    /// [N] -> [N, dim] float32. freq_i = exp(-ln(maxPeriod) * i / (half - shift)); with <paramref name="flipSinToCos"/>
    /// the cosine half comes first (Hunyuan-DiT: dim 256, flip true, shift 0).
    /// </summary>
    public static Tensor Embed(Tensor values, int dim = 256, bool flipSinToCos = true, double downscaleFreqShift = 0, double scale = 1,
                               double maxPeriod = 10000)
    {
        if (values.ndim != 1) throw new ArgumentException($"timestep embedding expects a 1-D tensor, got shape [{string.Join(", ", values.shape)}]");
        using var scope = torch.NewDisposeScope();
        int half = dim / 2;
        var exponent = torch.arange(0, half, dtype: ScalarType.Float32, device: values.device) * (-Math.Log(maxPeriod));
        exponent = exponent / (half - downscaleFreqShift);
        var args = values.unsqueeze(1).to(ScalarType.Float32) * torch.exp(exponent).unsqueeze(0) * scale;   // [N, half]
        var emb = flipSinToCos ? torch.cat([torch.cos(args), torch.sin(args)], 1) : torch.cat([torch.sin(args), torch.cos(args)], 1);
        if (dim % 2 == 1) emb = nn.functional.pad(emb, [0, 1, 0, 0]);
        return emb.MoveToOuterDisposeScope();
    }
}

/// <summary>Linear -> SiLU -> Linear (diffusers TimestepEmbedding; keys linear_1, linear_2).</summary>
public sealed class TimestepEmbedding : nn.Module<Tensor, Tensor>
{
    public nn.Module<Tensor, Tensor> linear_1;
    public nn.Module<Tensor, Tensor> linear_2;

    public TimestepEmbedding(long inChannels, long timeEmbedDim, Device? device = null, ScalarType? dtype = null)
        : base(nameof(TimestepEmbedding))
    {
        linear_1 = nn.Linear(inChannels, timeEmbedDim, device: device, dtype: dtype);
        linear_2 = nn.Linear(timeEmbedDim, timeEmbedDim, device: device, dtype: dtype);
        RegisterComponents();
    }

    public override Tensor forward(Tensor sample)
    {
        using var scope = torch.NewDisposeScope();
        return linear_2.call(nn.functional.silu(linear_1.call(sample))).MoveToOuterDisposeScope();
    }
}
