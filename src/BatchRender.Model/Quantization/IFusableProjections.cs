using static TorchSharp.torch;
using static TorchSharp.torch.nn;

namespace BatchRender.Model.Quantization;

/// <summary>
/// Implemented by a module (an attention) whose Linear children in a group read the same input, so int8 quantization
/// can run each group as one GEMM with the activation quantized once: q, k, v of self-attention; k, v of
/// cross-attention. The module's single q/k/v method calls <see cref="DynamicQuantizedFusedLinear.ForwardSplit"/>
/// on the installed projection instead of the separate Linears when one is installed.
/// </summary>
public interface IFusableProjections
{
    /// <summary>Groups of child names, e.g. ["to_q", "to_k", "to_v"]. Each child must be a Linear held in a
    /// <c>Module&lt;Tensor, Tensor&gt;</c> field, and all of a group must take the same input.</summary>
    IReadOnlyList<IReadOnlyList<string>> FusableGroups { get; }

    /// <summary>Installs the fused projection for <paramref name="group"/> (one of <see cref="FusableGroups"/>).</summary>
    void SetFusedProjection(IReadOnlyList<string> group, DynamicQuantizedFusedLinear fused);
}

/// <summary>
/// Stands in for one member of a fused group in the module tree (it holds no weights), so the separate fp32 Linears
/// can be freed. Called directly it still gives the right answer: the fused GEMM, sliced.
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
