using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;
using static TorchSharp.torch.nn;

namespace BatchRender.Model.Quantization;

/// <summary>
/// Drop-in replacement for a <see cref="Linear"/>: int8 weights quantized per output channel and prepared for the
/// kernel once, at construction; the activation quantized at run time; int8 GEMM with int32 accumulation,
/// dequantized, bias added. Holds no parameters: a quantized model is re-quantized from its fp32 checkpoint at load
/// (deterministic, so the outputs are identical each time).
/// </summary>
public sealed class DynamicQuantizedLinear : Module<Tensor, Tensor>
{
    private readonly PackedInt8Linear _packed;

    public DynamicQuantizedLinear(Linear linear, Int8KernelKind kernel)
        : this(Int8Kernels.Prepare(kernel, linear.weight!, linear.bias, linear.weight!.device)) { }

    public DynamicQuantizedLinear(PackedInt8Linear packed) : base(nameof(DynamicQuantizedLinear)) => _packed = packed;

    public long InFeatures => _packed.InFeatures;
    public long OutFeatures => _packed.OutFeatures;
    public Int8KernelKind Kernel => _packed.Kind;
    /// <summary>Resident bytes of the quantized weight, scales and bias.</summary>
    public long Bytes => _packed.Bytes;

    /// <summary>x [..., in] → [..., out].</summary>
    public override Tensor forward(Tensor x) => _packed.Forward(x);

    protected override void Dispose(bool disposing)
    {
        if (disposing) _packed.Dispose();
        base.Dispose(disposing);
    }
}

/// <summary>
/// Several Linears that read the same input (q, k and v of an attention) as ONE int8 GEMM: their int8 weights are
/// concatenated along the output axis (per-channel scales make that exact), the input is quantized once, and the
/// output is split back. <see cref="forward"/> returns the concatenation; <see cref="ForwardSplit"/> the parts.
/// </summary>
public sealed class DynamicQuantizedFusedLinear : Module<Tensor, Tensor>
{
    private readonly PackedInt8Linear _packed;
    private readonly long[] _splits;

    public DynamicQuantizedFusedLinear(IReadOnlyList<Linear> linears, Int8KernelKind kernel)
        : base(nameof(DynamicQuantizedFusedLinear))
    {
        if (linears.Count < 2) throw new ArgumentException("fusing needs at least two Linears", nameof(linears));
        var inFeatures = linears[0].in_features;
        if (linears.Any(l => l.in_features != inFeatures))
            throw new ArgumentException($"fused Linears must share their input width; got {string.Join(", ", linears.Select(l => l.in_features))}", nameof(linears));
        var device = linears[0].weight!.device;
        var parts = linears.Select(l => Int8Kernels.QuantizeFor(kernel, l.weight!)).ToList();
        try
        {
            using var fused = Int8Weight.Concat(parts);
            using var bias = torch.cat(linears.Select(l => l.bias?.detach() ?? torch.zeros(l.out_features, l.weight!.dtype, device)).ToArray(), 0);
            _packed = Int8Kernels.Prepare(kernel, fused, bias, device);
        }
        finally { foreach (var p in parts) p.Dispose(); }
        _splits = linears.Select(l => l.out_features).ToArray();
    }

    public long InFeatures => _packed.InFeatures;
    public IReadOnlyList<long> OutFeatures => _splits;
    public Int8KernelKind Kernel => _packed.Kind;
    public long Bytes => _packed.Bytes;

    /// <summary>x [..., in] → [..., sum(out)].</summary>
    public override Tensor forward(Tensor x) => _packed.Forward(x);

    /// <summary>x [..., in] → one contiguous [..., out_i] per fused Linear, in construction order. Contiguous, so callers
    /// can <c>view</c> them into heads and attention sees the same layout (and numbers) as from separate Linears.</summary>
    public Tensor[] ForwardSplit(Tensor x)
    {
        using var y = _packed.Forward(x);
        var views = y.split(_splits, -1);
        var parts = views.Select(v => v.contiguous()).ToArray();
        foreach (var v in views) v.Dispose();
        return parts;
    }

    protected override void Dispose(bool disposing)
    {
        if (disposing) _packed.Dispose();
        base.Dispose(disposing);
    }
}
