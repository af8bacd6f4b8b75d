using static TorchSharp.torch;
using static TorchSharp.torch.nn;

namespace BatchRender.Model.Quantization;

/// <summary>
/// Stands in for one member of a fused projection group in the module tree (it holds no weights), so the separate
/// fp32 Linears can be freed. Called directly it still gives the right answer: the fused GEMM, sliced.
/// </summary>
public sealed class FusedProjectionSlice : Module<Tensor, Tensor>
{
    private readonly DynamicQuantizedFusedLinear _fused;
    private readonly long _offset, _length;

    public FusedProjectionSlice(DynamicQuantizedFusedLinear fused, int index) : base(nameof(FusedProjectionSlice))
    {
        _fused = fused;
        _offset = fused.OutFeatures.Take(index).Sum();
        _length = fused.OutFeatures[index];
    }

    public override Tensor forward(Tensor x)
    {
        using var all = _fused.forward(x);
        return all.narrow(-1, _offset, _length).contiguous();
    }
}
