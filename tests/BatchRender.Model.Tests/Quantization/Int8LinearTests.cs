using BatchRender.Model.Quantization;
using TorchSharp;
using static TorchSharp.torch;

namespace BatchRender.Model.Tests.Quantization;

/// <summary>
/// int8 dynamic Linear kernels against fp32 F.linear. Error bound: relative Frobenius error ≤ 2% for N(0,1)
/// activations and transformer-like weights (std 0.02). Measured 0.8-1.8% (fbgemm: per-tensor 8-bit activations;
/// reference and _int_mm: per-token 8-bit activations), so the bound leaves room without hiding a broken kernel
/// (a wrong scale, offset or padding gives errors of order 100%).
/// </summary>
public class Int8LinearTests
{
    private const double MaxRelativeError = 0.02;

    public static TheoryData<long, long, long> Shapes => new()
    {
        { 1, 77, 33 }, { 5, 77, 33 }, { 257, 77, 33 }, { 16, 64, 48 }, { 17, 200, 120 }, { 64, 256, 384 },
    };

    private static (Tensor X, Tensor W, Tensor B) Data(long m, long k, long n, int seed)
    {
        var gen = new Generator((ulong)seed);
        return (torch.randn(m, k, generator: gen), torch.randn(n, k, generator: gen) * 0.02, torch.randn(n, generator: gen) * 0.1);
    }

    internal static double RelativeError(Tensor actual, Tensor expected) =>
        (actual - expected).norm().item<float>() / (double)expected.norm().item<float>();

    [Theory]
    [MemberData(nameof(Shapes))]
    public void Fbgemm_matches_fp32_within_bound(long m, long k, long n)
    {
        Assert.True(FbgemmInt8Kernel.IsSupported, "fbgemm should run on this x86-64 AVX2 CPU");
        AssertKernelMatchesFp32(Int8KernelKind.Fbgemm, m, k, n);
    }

    [Theory]
    [MemberData(nameof(Shapes))]
    public void Reference_matches_fp32_within_bound(long m, long k, long n) => AssertKernelMatchesFp32(Int8KernelKind.Reference, m, k, n);

    [Theory]
    [MemberData(nameof(Shapes))]
    public void IntMm_script_runs_on_cpu_and_equals_reference(long m, long k, long n)
    {
        // The CUDA kernel's script (padding K, N to 8 and M past 16, per-token scales) on CPU's reference _int_mm:
        // integer GEMMs are exact in both, so the two agree to float rounding.
        using var scope = NewDisposeScope();
        var (x, w, b) = Data(m, k, n, 11);
        using var intMm = Int8Kernels.Prepare(Int8KernelKind.IntMm, w, b, CPU);
        using var reference = Int8Kernels.Prepare(Int8KernelKind.Reference, w, b, CPU);
        var y = intMm.Forward(x);
        Assert.Equal(new[] { m, n }, y.shape);
        Assert.True(RelativeError(y, reference.Forward(x)) < 1e-6);
    }

    [Theory]
    [MemberData(nameof(Shapes))]
    public void Fbgemm_equals_exact_integer_arithmetic(long m, long k, long n)
    {
        // Emulates the op exactly (per-tensor asymmetric uint8 activation, int GEMM in float64, per-channel dequant).
        // A saturating int16 pair sum inside fbgemm would show up here as a 1e-2 deviation.
        using var scope = NewDisposeScope();
        var (x, w, b) = Data(m, k, n, 13);
        using var q = Int8Kernels.QuantizeFor(Int8KernelKind.Fbgemm, w);
        using var packed = Int8Kernels.Prepare(Int8KernelKind.Fbgemm, q, b, CPU);
        float lo = Math.Min(0f, x.min().item<float>()), hi = Math.Max(0f, x.max().item<float>());
        var scale = (hi - lo) / 255.0;
        var zeroPoint = Math.Round(-lo / scale);
        var xq = ((x.to(ScalarType.Float64) / scale).round() + zeroPoint).clamp(0, 255) - zeroPoint;
        var expected = (torch.nn.functional.linear(xq, q.Values.to(ScalarType.Float64)) * scale * q.Scale.to(ScalarType.Float64) + b.to(ScalarType.Float64)).to(ScalarType.Float32);
        Assert.True(RelativeError(packed.Forward(x), expected) < 1e-3);
    }

    [Fact]
    public void Pair_bounded_weights_keep_neighbour_sums_within_127()
    {
        using var scope = NewDisposeScope();
        var w = torch.randn(64, 301, generator: new Generator(3));
        w[5, 7] = torch.tensor(9f);   // an outlier: its row's scale follows it
        using var q = Int8Weight.QuantizePairBounded(w);
        var a = q.Values.to(ScalarType.Int32).abs();
        Assert.True((a[.., ..^1] + a[.., 1..]).max().item<int>() <= 128);
        Assert.True(RelativeError(q.Dequantize(), w) < 0.02);
    }

    [Fact]
    public void Leading_dimensions_are_kept_and_bf16_inputs_come_back_bf16()
    {
        using var scope = NewDisposeScope();
        var (_, w, b) = Data(1, 96, 40, 5);
        var x = torch.randn(2, 3, 7, 96, generator: new Generator(6));
        foreach (var kind in new[] { Int8KernelKind.Fbgemm, Int8KernelKind.Reference, Int8KernelKind.IntMm })
        {
            using var packed = Int8Kernels.Prepare(kind, w, b, CPU);
            var y = packed.Forward(x);
            Assert.Equal(new long[] { 2, 3, 7, 40 }, y.shape);
            Assert.True(RelativeError(y, torch.nn.functional.linear(x, w, b)) < MaxRelativeError, $"{kind}");
            Assert.Equal(ScalarType.BFloat16, packed.Forward(x.to(ScalarType.BFloat16)).dtype);
        }
    }

    [Fact]
    public void Wrong_input_width_is_a_clear_error()
    {
        using var scope = NewDisposeScope();
        using var packed = Int8Kernels.Prepare(Int8KernelKind.Fbgemm, torch.randn(8, 16), null, CPU);
        var e = Assert.Throws<ArgumentException>(() => packed.Forward(torch.randn(3, 15)));
        Assert.Contains("[..., 16]", e.Message);
    }

    [Fact]
    public void Cpu_kernel_choice_is_fbgemm_here()
    {
        Assert.Equal(Int8KernelKind.Fbgemm, Int8Kernels.ChooseFor(CPU));
        Assert.Equal(Int8KernelKind.IntMm, Int8Kernels.ChooseFor(new Device(DeviceType.CUDA, 0)));
    }

    [CudaFact]
    public void IntMm_on_cuda_matches_fp32_within_bound()
    {
        foreach (var (m, k, n) in new[] { (1L, 77L, 33L), (5L, 77L, 33L), (257L, 77L, 33L), (300L, 1408L, 1408L) })
        {
            using var scope = NewDisposeScope();
            var (x, w, b) = Data(m, k, n, 17);
            var cuda = new Device(DeviceType.CUDA, 0);
            using var packed = Int8Kernels.Prepare(Int8KernelKind.IntMm, w.to(cuda), b.to(cuda), cuda);
            var y = packed.Forward(x.to(cuda)).cpu();
            Assert.True(RelativeError(y, torch.nn.functional.linear(x, w, b)) < MaxRelativeError, $"M={m} K={k} N={n}");
            Assert.True(RelativeError(packed.Forward(x.to(cuda).to(ScalarType.BFloat16)).to(ScalarType.Float32).cpu(), y) < 0.01);
        }
    }

    private static void AssertKernelMatchesFp32(Int8KernelKind kind, long m, long k, long n)
    {
        using var scope = NewDisposeScope();
        var (x, w, b) = Data(m, k, n, 7);
        using var packed = Int8Kernels.Prepare(kind, w, b, CPU);
        Assert.Equal(kind, packed.Kind);
        var y = packed.Forward(x);
        Assert.Equal(new[] { m, n }, y.shape);
        var err = RelativeError(y, torch.nn.functional.linear(x, w, b));
        Assert.True(err <= MaxRelativeError, $"{kind} M={m} K={k} N={n}: relative error {err:P2} > {MaxRelativeError:P0}");
    }
}
