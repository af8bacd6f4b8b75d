using TorchSharp;
using static TorchSharp.torch;

namespace BatchRender.Model.Normalization;

/// <summary>
/// Final adaptive norm: emb = linear(SiLU(cond)); scale = emb[:, :D], shift = emb[:, D:] (scale first, as diffusers stores it);
/// y = LayerNorm(x) * (1 + scale) + shift. The caller passes cond in float32 (Hunyuan-DiT does), so the SiLU runs in float32.
/// </summary>
public sealed class AdaLayerNormContinuous : nn.Module
{
    public nn.Module<Tensor, Tensor> linear;
    public nn.Module<Tensor, Tensor> norm;

    public AdaLayerNormContinuous(long embeddingDim, long conditioningEmbeddingDim, bool elementwiseAffine = false, double eps = 1e-6,
                                  Device? device = null, ScalarType? dtype = null)
        : base(nameof(AdaLayerNormContinuous))
    {
        linear = nn.Linear(conditioningEmbeddingDim, embeddingDim * 2, device: device, dtype: dtype);
        norm = nn.LayerNorm(embeddingDim, eps, elementwiseAffine, device: device, dtype: dtype);
        RegisterComponents();
    }

    /// <param name="x">[B, N, D]</param>
    /// <param name="conditioning">[B, Dc]</param>
    public Tensor forward(Tensor x, Tensor conditioning)
    {
        using var scope = torch.NewDisposeScope();
        var emb = linear.call(nn.functional.silu(conditioning).to(x.dtype));   // [B, 2D]
        var chunks = emb.chunk(2, 1);
        var (scale, shift) = (chunks[0], chunks[1]);
        return (norm.call(x) * (1 + scale).unsqueeze(1) + shift.unsqueeze(1)).MoveToOuterDisposeScope();
    }
}
