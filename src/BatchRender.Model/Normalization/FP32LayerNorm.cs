using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace BatchRender.Model.Normalization;

/// <summary>LayerNorm computed in float32 whatever the activation dtype, cast back afterwards (diffusers FP32LayerNorm).</summary>
public sealed class FP32LayerNorm : nn.Module<Tensor, Tensor>
{
    private readonly long[] normalizedShape;
    private readonly double eps;
    public Parameter? weight;
    public Parameter? bias;

    public FP32LayerNorm(long dim, double eps = 1e-5, bool elementwiseAffine = true, Device? device = null, ScalarType? dtype = null)
        : base(nameof(FP32LayerNorm))
    {
        normalizedShape = [dim];
        this.eps = eps;
        if (elementwiseAffine)
        {
            weight = new Parameter(torch.ones(dim, dtype: dtype, device: device));
            bias = new Parameter(torch.zeros(dim, dtype: dtype, device: device));
        }
        RegisterComponents();
    }

    public override Tensor forward(Tensor x)
    {
        using var scope = torch.NewDisposeScope();
        var y = nn.functional.layer_norm(x.to(ScalarType.Float32), normalizedShape,
                                         weight?.to(ScalarType.Float32), bias?.to(ScalarType.Float32), eps);
        return y.to(x.dtype).MoveToOuterDisposeScope();
    }
}
