using TorchSharp;
using static TorchSharp.torch;

namespace BatchRender.Model.Quantization;

/// <summary>
/// CPU int8 linear on fbgemm (the engine behind PyTorch's x86 <c>quantize_dynamic</c>), reached through TorchScript
/// since TorchSharp does not bind the aten ops <c>fbgemm_pack_quantized_matrix</c> and
/// <c>fbgemm_linear_int8_weight_fp32_activation</c>.
/// <para>
/// What the op does (aten/src/ATen/native/QuantizedLinear.cpp): it quantizes the whole activation tensor to uint8
/// with one asymmetric scale/zero point from its min/max, multiplies with the packed int8 weight (int32 accumulation),
/// and dequantizes with ONE weight scale and zero point (per-tensor). We want per-channel weights, so we pass weight
/// scale 1 and zero point 0, pre-divide the bias by the channel scales, and multiply the output by the channel scales
/// (one extra in-place pass over the output). The column offsets the op needs are the row sums of the int8 weight.
/// </para>
/// <para>
/// Saturation: the AVX2 kernel multiplies uint8 activations by int8 weights with vpmaddubsw, which saturates each sum
/// of two neighbouring products at int16 (2·255·127 &gt; 32767); PyTorch sidesteps it with reduce_range (7-bit
/// activations), which this op cannot do. Weights for this kernel are therefore quantized with
/// <see cref="Int8Weight.QuantizePairBounded"/>. Measured here (random 0.02-std weights, N(0,1) activations): plain
/// ±127 per-channel weights deviate from the exact integer result by 0.3-2.4% (saturation); pair-bounded by ≤ 3e-4,
/// with a relative error vs fp32 of 1.1-1.8% (±63 weights: 1.4-2.1%; fbgemm per-tensor weights: 1.1-1.7%) at the same
/// speed as per-tensor. The rest of the error is the per-tensor 8-bit activation quantization the op does.
/// </para>
/// </summary>
public static class FbgemmInt8Kernel
{
    // Known-good script (an invalid one aborts the process): compiled once, on first use.
    private const string Script = """
def pack(w: Tensor) -> Tensor:
    return torch.fbgemm_pack_quantized_matrix(w)

def int8_linear(x: Tensor, w_shape: Tensor, packed: Tensor, col_offsets: Tensor, bias_over_scale: Tensor, w_scale: Tensor) -> Tensor:
    y = torch.fbgemm_linear_int8_weight_fp32_activation(x, w_shape, packed, col_offsets, 1.0, 0, bias_over_scale)
    return y.mul_(w_scale)
""" + "\n";   // TorchScript needs the final newline

    private static readonly Lazy<jit.CompilationUnit> Unit = new(() => jit.compile(Script));

    private static readonly Lazy<bool> Supported = new(Probe);

    /// <summary>True on an x86-64 CPU with AVX2 where a probe GEMM runs and matches the reference path.</summary>
    public static bool IsSupported => Supported.Value;

    private static bool Probe()
    {
        if (!Int8Kernels.IsX64 || !System.Runtime.Intrinsics.X86.Avx2.IsSupported) return false;
        try
        {
            using var scope = NewDisposeScope();
            var gen = new Generator(1234);
            var w = torch.randn(24, 40, generator: gen);
            var x = torch.randn(3, 40, generator: gen);
            using var packed = Int8Kernels.Prepare(Int8KernelKind.Fbgemm, w, null, CPU);
            var y = packed.Forward(x);
            var reference = torch.nn.functional.linear(x, w);
            var err = (y - reference).norm().item<float>() / reference.norm().item<float>();
            return err < 0.05f;
        }
        catch (Exception)
        {
            return false;   // libtorch built without fbgemm, or a CPU fbgemm refuses: TORCH_CHECK surfaces as an exception
        }
    }

    internal sealed class Packed : PackedInt8Linear
    {
        private readonly Tensor _shape;        // int8 [N, K] of zero strides: the op reads only the weight's sizes
        private readonly Tensor _packed;       // fbgemm PackBMatrix<int8> (opaque, owns its own buffer)
        private readonly Tensor _colOffsets;   // int32 [N]: row sums of the int8 weight
        private readonly Tensor _biasOverScale, _scale;   // float [N]

        public Packed(Int8Weight w, Tensor? bias)
        {
            InFeatures = w.InFeatures; OutFeatures = w.OutFeatures;
            var values = w.Values.cpu().contiguous();
            _packed = Unit.Value.invoke<Tensor>("pack", values);
            _shape = torch.zeros(1, 1, ScalarType.Int8).expand(OutFeatures, InFeatures);
            _colOffsets = values.to(ScalarType.Int32).sum(1).to(ScalarType.Int32).contiguous();
            _scale = w.Scale.cpu().to(ScalarType.Float32).contiguous().clone();
            using var b = Int8Kernels.BiasOrZeros(bias, OutFeatures, CPU);
            _biasOverScale = (b / _scale).contiguous();
            if (!ReferenceEquals(values, w.Values)) values.Dispose();
        }

        public override Int8KernelKind Kind => Int8KernelKind.Fbgemm;

        /// <summary>The packed int8 payload (N·K; fbgemm pads it to its register blocking) plus offsets, bias and scales.</summary>
        public override long Bytes => InFeatures * OutFeatures + 12 * OutFeatures;

        public override Tensor Forward(Tensor x)
        {
            CheckInput(x);
            if (x.device_type != DeviceType.CPU) throw new ArgumentException($"the fbgemm int8 kernel runs on CPU; input is on {x.device}", nameof(x));
            if (x.dtype != ScalarType.Float32)
            {
                using var x32 = x.to(ScalarType.Float32);
                using var y32 = Unit.Value.invoke<Tensor>("int8_linear", x32, _shape, _packed, _colOffsets, _biasOverScale, _scale);
                return y32.to(x.dtype);
            }
            return Unit.Value.invoke<Tensor>("int8_linear", x, _shape, _packed, _colOffsets, _biasOverScale, _scale);
        }

        public override void Dispose()
        {
            _shape.Dispose(); _packed.Dispose(); _colOffsets.Dispose(); _biasOverScale.Dispose(); _scale.Dispose();
        }
    }
}
