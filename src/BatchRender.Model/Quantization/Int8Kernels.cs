using System.Runtime.InteropServices;
using TorchSharp;
using static TorchSharp.torch;

namespace BatchRender.Model.Quantization;

/// <summary>Which int8 GEMM a quantized Linear runs on.</summary>
public enum Int8KernelKind
{
    /// <summary>CPU: fbgemm's dynamic int8 linear (AVX2/AVX-512), reached through TorchScript.</summary>
    Fbgemm,
    /// <summary>CUDA: <c>torch._int_mm</c> (cuBLASLt int8 GEMM, int32 accumulation), per-token activation scales.</summary>
    IntMm,
    /// <summary>Any device: plain tensor ops (quantize, integer-valued float GEMM, dequantize). Tests and fallback.</summary>
    Reference,
}

/// <summary>A weight prepared once for one kernel; <see cref="Forward"/> quantizes the activation at run time.</summary>
public abstract class PackedInt8Linear : IDisposable
{
    public abstract Int8KernelKind Kind { get; }
    public long InFeatures { get; protected init; }
    public long OutFeatures { get; protected init; }

    /// <summary>x [..., K] float → [..., N] in x's dtype.</summary>
    public abstract Tensor Forward(Tensor x);

    /// <summary>Bytes this layer keeps resident (int8 payload, scales, offsets, bias).</summary>
    public abstract long Bytes { get; }

    public abstract void Dispose();

    protected void CheckInput(Tensor x)
    {
        if (x.dim() < 1 || x.shape[^1] != InFeatures)
            throw new ArgumentException($"int8 linear expects [..., {InFeatures}] input, got [{string.Join(", ", x.shape)}]", nameof(x));
    }
}

/// <summary>Kernel choice per device, and preparation of weights for a kernel.</summary>
public static class Int8Kernels
{
    /// <summary>
    /// The kernel for a device. CPU: fbgemm on x86-64 (where the benchmark measures it 1.8-2.5x faster than fp32 GEMM,
    /// and faster than the reference path by far), else the reference path. CUDA: <c>_int_mm</c>.
    /// </summary>
    public static Int8KernelKind ChooseFor(Device device)
    {
        if (device.type == DeviceType.CUDA) return Int8KernelKind.IntMm;
        if (device.type == DeviceType.CPU)
            return FbgemmInt8Kernel.IsSupported ? Int8KernelKind.Fbgemm : Int8KernelKind.Reference;
        return Int8KernelKind.Reference;
    }

    /// <summary>Quantizes a float weight [N, K] (+ bias [N]) and prepares it for <paramref name="kind"/> on <paramref name="device"/>.</summary>
    public static PackedInt8Linear Prepare(Int8KernelKind kind, Tensor weight, Tensor? bias, Device device)
    {
        using var q = QuantizeFor(kind, weight);
        return Prepare(kind, q, bias, device);
    }

    /// <summary>Per-channel int8 quantization suited to the kernel (fbgemm needs pair-bounded levels, see <see cref="FbgemmInt8Kernel"/>).</summary>
    public static Int8Weight QuantizeFor(Int8KernelKind kind, Tensor weight) =>
        kind == Int8KernelKind.Fbgemm ? Int8Weight.QuantizePairBounded(weight) : Int8Weight.Quantize(weight);

    /// <summary>Prepares an already quantized weight (copied; <paramref name="weight"/> stays the caller's).</summary>
    public static PackedInt8Linear Prepare(Int8KernelKind kind, Int8Weight weight, Tensor? bias, Device device) => kind switch
    {
        Int8KernelKind.Fbgemm => new FbgemmInt8Kernel.Packed(weight, bias),
        Int8KernelKind.IntMm => new IntMmInt8Kernel.Packed(weight, bias, device),
        Int8KernelKind.Reference => new ReferenceInt8Kernel.Packed(weight, bias, device),
        _ => throw new ArgumentOutOfRangeException(nameof(kind)),
    };

    internal static Tensor BiasOrZeros(Tensor? bias, long n, Device device) =>
        bias is null ? torch.zeros(n, ScalarType.Float32, device) : bias.detach().to(ScalarType.Float32, device).contiguous();

    internal static bool IsX64 => RuntimeInformation.ProcessArchitecture == Architecture.X64;
}

/// <summary>
/// Plain-tensor-op int8 linear, any device: per-token symmetric int8 activations (the scheme of the CUDA kernel),
/// per-channel int8 weights, the integer GEMM done on integer-valued float32 tensors (exact while |acc| &lt; 2^24,
/// i.e. practically always at these widths), then scaled and biased.
/// </summary>
public static class ReferenceInt8Kernel
{
    /// <summary>Per-token symmetric quantization: x [M, K] → (integer-valued float32 [M, K], scale [M, 1]).</summary>
    public static (Tensor Values, Tensor Scale) QuantizePerToken(Tensor x)
    {
        var scale = x.abs().amax(new long[] { -1 }, keepdim: true).clamp_min(1e-30) / 127.0;
        var values = (x / scale).round_().clamp_(-127, 127);
        return (values, scale);
    }

    internal sealed class Packed : PackedInt8Linear
    {
        private readonly Tensor _values, _scale, _bias;   // int8 [N, K], float [N], float [N]

        public Packed(Int8Weight w, Tensor? bias, Device device)
        {
            InFeatures = w.InFeatures; OutFeatures = w.OutFeatures;
            _values = w.Values.to(device).contiguous().clone();
            _scale = w.Scale.to(device).clone();
            _bias = Int8Kernels.BiasOrZeros(bias, OutFeatures, device);
        }

        public override Int8KernelKind Kind => Int8KernelKind.Reference;
        public override long Bytes => _values.NumberOfElements + 4 * (_scale.NumberOfElements + _bias.NumberOfElements);

        public override Tensor Forward(Tensor x)
        {
            CheckInput(x);
            using var scope = NewDisposeScope();
            var x32 = x.to(ScalarType.Float32);
            var (xq, xs) = QuantizePerToken(x32);
            var acc = torch.nn.functional.linear(xq, _values.to(ScalarType.Float32));
            var y = acc.mul_(xs).mul_(_scale).add_(_bias);
            return y.to(x.dtype).MoveToOuterDisposeScope();
        }

        public override void Dispose() { _values.Dispose(); _scale.Dispose(); _bias.Dispose(); }
    }
}

/// <summary>
/// CUDA int8 linear through <c>torch._int_mm</c> (cuBLASLt int8 GEMM, int32 accumulation): per-token symmetric int8
/// activations, per-channel int8 weights. <c>_int_mm</c> needs M &gt; 16 and K, N multiples of 8: the weight is padded
/// once at load, the activation per call. The same script runs on CPU (a slow reference kernel there), which is how
/// the CPU tests check its padding and scaling.
/// </summary>
public static class IntMmInt8Kernel
{
    // Known-good script (an invalid one aborts the process): compiled once, on first use. Dtypes come from the
    // argument tensors (w_t is int8, w_scale float32): `torch.float32` is not a value for the standalone compiler.
    private const string Script = """
def int8_linear(x: Tensor, w_t: Tensor, w_scale: Tensor, bias: Tensor) -> Tensor:
    n_out = w_scale.size(0)
    k_in = x.size(-1)
    out_shape = x.shape[:-1]
    out_shape.append(n_out)
    x2 = x.reshape(-1, k_in).to(w_scale.dtype)
    m = x2.size(0)
    a_scale = x2.abs().amax([1], True).clamp_min(1e-30) / 127.0
    xq = (x2 / a_scale).round_().clamp_(-127.0, 127.0).to(w_t.dtype)
    pad_k = w_t.size(0) - k_in
    pad_m = 0
    if m < 17:
        pad_m = 17 - m
    if pad_k > 0 or pad_m > 0:
        xq = torch.constant_pad_nd(xq, [0, pad_k, 0, pad_m], 0)
    acc = torch._int_mm(xq, w_t)
    y = acc[:m, :n_out].to(w_scale.dtype) * a_scale * w_scale + bias
    return y.reshape(out_shape).to(x.dtype)
""" + "\n";   // TorchScript needs the final newline

    private static readonly Lazy<jit.CompilationUnit> Unit = new(() => jit.compile(Script));

    internal sealed class Packed : PackedInt8Linear
    {
        private readonly Tensor _wT, _scale, _bias;   // int8 [Kp, Np] (a transposed view of [Np, Kp]), float [N], float [N]

        public Packed(Int8Weight w, Tensor? bias, Device device)
        {
            InFeatures = w.InFeatures; OutFeatures = w.OutFeatures;
            long kp = RoundUp(InFeatures, 8), np = RoundUp(OutFeatures, 8);
            using (var padded = torch.nn.functional.pad(w.Values, new[] { 0L, kp - InFeatures, 0L, np - OutFeatures }))
                _wT = padded.to(device).contiguous().t();   // column-major B, the layout cuBLASLt's int8 GEMM wants
            _scale = w.Scale.to(device).clone();
            _bias = Int8Kernels.BiasOrZeros(bias, OutFeatures, device);
        }

        public override Int8KernelKind Kind => Int8KernelKind.IntMm;
        public override long Bytes => _wT.NumberOfElements + 4 * (_scale.NumberOfElements + _bias.NumberOfElements);

        public override Tensor Forward(Tensor x)
        {
            CheckInput(x);
            return Unit.Value.invoke<Tensor>("int8_linear", x, _wT, _scale, _bias);
        }

        public override void Dispose() { _wT.Dispose(); _scale.Dispose(); _bias.Dispose(); }
    }

    private static long RoundUp(long v, long m) => (v + m - 1) / m * m;
}
