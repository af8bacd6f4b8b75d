using TorchSharp;
using static TorchSharp.torch;

namespace BatchRender.Model.Quantization;

/// <summary>
/// A Linear weight quantized symmetrically per output channel, as PyTorch's <c>quantize_dynamic</c> with a
/// per-channel qconfig does: <c>W[n, :] ≈ Scale[n] * Values[n, :]</c>, Values in [-127, 127], zero point 0.
/// </summary>
public sealed class Int8Weight : IDisposable
{
    /// <summary>int8 [N, K].</summary>
    public Tensor Values { get; }
    /// <summary>float32 [N]: one scale per output channel.</summary>
    public Tensor Scale { get; }

    public long OutFeatures => Values.shape[0];
    public long InFeatures => Values.shape[1];

    private Int8Weight(Tensor values, Tensor scale) { Values = values; Scale = scale; }

    /// <param name="weight">float [N, K] (any float dtype; quantized in float32).</param>
    /// <param name="maxLevel">Largest integer level (127 for full int8).</param>
    public static Int8Weight Quantize(Tensor weight, int maxLevel = 127)
    {
        if (weight.dim() != 2) throw new ArgumentException($"expected a 2-D Linear weight, got shape [{string.Join(", ", weight.shape)}]", nameof(weight));
        if (maxLevel is < 1 or > 127) throw new ArgumentOutOfRangeException(nameof(maxLevel));
        using var scope = NewDisposeScope();
        var w = weight.detach().to(ScalarType.Float32);
        var absMax = w.abs().amax(1);                                              // [N]
        // An all-zero row would give scale 0 (and 0/0 below); any positive scale represents it exactly.
        var scale = torch.where(absMax > 0, absMax / maxLevel, torch.ones_like(absMax));
        var values = (w / scale.unsqueeze(1)).round_().clamp_(-maxLevel, maxLevel).to(ScalarType.Int8);
        return new Int8Weight(values.contiguous().MoveToOuterDisposeScope(), scale.contiguous().MoveToOuterDisposeScope());
    }

    /// <summary>
    /// Per-channel quantization whose every pair of neighbouring levels along K sums to at most 127 in magnitude, so a
    /// uint8 activation (0..255) times a pair of weights never leaves int16 (255·128 &lt; 32768): the condition under
    /// which fbgemm's AVX2 kernel (vpmaddubsw, saturating int16 pair sums) is exact. Scale = max over neighbouring
    /// pairs of (|w[k]| + |w[k+1]|) / 127; rounding adds at most 1 to a pair's sum. For typical rows this keeps
    /// ~90 levels where a plain ±63 clamp keeps 63.
    /// </summary>
    public static Int8Weight QuantizePairBounded(Tensor weight)
    {
        if (weight.dim() != 2) throw new ArgumentException($"expected a 2-D Linear weight, got shape [{string.Join(", ", weight.shape)}]", nameof(weight));
        using var scope = NewDisposeScope();
        var w = weight.detach().to(ScalarType.Float32);
        var a = w.abs();
        var bound = a.amax(1);                                                     // K = 1 has no pairs
        if (w.shape[1] > 1)
            bound = torch.maximum(bound, (a[.., ..^1] + a[.., 1..]).amax(1));
        var scale = torch.where(bound > 0, bound / 127.0, torch.ones_like(bound));
        var values = (w / scale.unsqueeze(1)).round_().clamp_(-127, 127).to(ScalarType.Int8);
        return new Int8Weight(values.contiguous().MoveToOuterDisposeScope(), scale.contiguous().MoveToOuterDisposeScope());
    }

    /// <summary>Concatenates weights quantized separately (per-channel scales make this exact) along the output axis.</summary>
    public static Int8Weight Concat(IReadOnlyList<Int8Weight> parts)
    {
        if (parts.Count == 0) throw new ArgumentException("nothing to concatenate", nameof(parts));
        var k = parts[0].InFeatures;
        if (parts.Any(p => p.InFeatures != k))
            throw new ArgumentException($"fused weights need the same input width; got {string.Join(", ", parts.Select(p => p.InFeatures))}", nameof(parts));
        return new Int8Weight(torch.cat(parts.Select(p => p.Values).ToArray(), 0), torch.cat(parts.Select(p => p.Scale).ToArray(), 0));
    }

    /// <summary>float32 [N, K] reconstruction (for tests and error analysis).</summary>
    public Tensor Dequantize() => Values.to(ScalarType.Float32) * Scale.unsqueeze(1);

    public void Dispose() { Values.Dispose(); Scale.Dispose(); }
}
