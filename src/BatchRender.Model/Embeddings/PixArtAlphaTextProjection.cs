using TorchSharp;
using static TorchSharp.torch;

namespace BatchRender.Model.Embeddings;

/// <summary>Linear -> SiLU (computed in float32, "silu_fp32") -> Linear; keys linear_1, linear_2.</summary>
public sealed class PixArtAlphaTextProjection : nn.Module<Tensor, Tensor>
{
    public nn.Module<Tensor, Tensor> linear_1;
    public nn.Module<Tensor, Tensor> linear_2;

    public PixArtAlphaTextProjection(long inFeatures, long hiddenSize, long outFeatures, Device? device = null, ScalarType? dtype = null)
        : base(nameof(PixArtAlphaTextProjection))
    {
        linear_1 = nn.Linear(inFeatures, hiddenSize, device: device, dtype: dtype);
        linear_2 = nn.Linear(hiddenSize, outFeatures, device: device, dtype: dtype);
        RegisterComponents();
    }

    public override Tensor forward(Tensor caption)
    {
        using var scope = torch.NewDisposeScope();
        var h = linear_1.call(caption);
        h = nn.functional.silu(h.to(ScalarType.Float32)).to(h.dtype);
        return linear_2.call(h).MoveToOuterDisposeScope();
    }
}
