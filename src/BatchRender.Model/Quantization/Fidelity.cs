using static TorchSharp.torch;

namespace BatchRender.Model.Quantization;

/// <summary>How close a test output is to a reference output.</summary>
public static class Fidelity
{
    /// <summary>Signal-to-noise ratio in dB: 10·log10(Σ ref² / Σ (test − ref)²), in float64; +∞ when identical.</summary>
    public static double SnrDb(Tensor test, Tensor reference)
    {
        if (!test.shape.SequenceEqual(reference.shape))
            throw new ArgumentException($"shapes differ: [{string.Join(", ", test.shape)}] vs [{string.Join(", ", reference.shape)}]");
        using var scope = NewDisposeScope();
        var r = reference.detach().to(ScalarType.Float64, CPU);
        var noise = (test.detach().to(ScalarType.Float64, CPU) - r).pow(2).sum().item<double>();
        var signal = r.pow(2).sum().item<double>();
        return noise == 0 ? double.PositiveInfinity : 10 * Math.Log10(signal / noise);
    }

    /// <summary>Peak signal-to-noise ratio in dB of images in [0, 1] (or [lo, hi] given by <paramref name="peak"/>).</summary>
    public static double PsnrDb(Tensor test, Tensor reference, double peak = 1.0)
    {
        if (!test.shape.SequenceEqual(reference.shape))
            throw new ArgumentException($"shapes differ: [{string.Join(", ", test.shape)}] vs [{string.Join(", ", reference.shape)}]");
        using var scope = NewDisposeScope();
        var mse = (test.detach().to(ScalarType.Float64, CPU) - reference.detach().to(ScalarType.Float64, CPU)).pow(2).mean().item<double>();
        return mse == 0 ? double.PositiveInfinity : 10 * Math.Log10(peak * peak / mse);
    }
}
