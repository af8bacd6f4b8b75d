using TorchSharp;
using static TorchSharp.torch;

namespace BatchRender.Model.Normalization;

/// <summary>
/// Hunyuan-DiT's adaptive norm: LayerNorm(x) + shift(temb), shift only (no scale, no gate).
/// The SiLU of the conditioning runs in float32.
/// </summary>
public sealed class AdaLayerNormShift : nn.Module
{
    /// <summary>[D] -> [D]; typed as a plain module so a quantized linear can replace it.</summary>
    public nn.Module<Tensor, Tensor> linear;
    public FP32LayerNorm norm;

    public AdaLayerNormShift(long embeddingDim, bool elementwiseAffine = true, double eps = 1e-6, Device? device = null, ScalarType? dtype = null)
        : base(nameof(AdaLayerNormShift))
    {
        linear = nn.Linear(embeddingDim, embeddingDim, device: device, dtype: dtype);
        norm = new FP32LayerNorm(embeddingDim, eps, elementwiseAffine, device, dtype);
        RegisterComponents();
    }

    /// <param name="x">[B, N, D]</param>
    /// <param name="emb">[B, D]</param>
    public Tensor forward(Tensor x, Tensor emb)
    {
        using var scope = torch.NewDisposeScope();
        var shift = linear.call(nn.functional.silu(emb.to(ScalarType.Float32)).to(emb.dtype));   // [B, D]
        return (norm.call(x) + shift.unsqueeze(1)).MoveToOuterDisposeScope();
    }
}
