using System.Diagnostics;
using System.Text.Json.Serialization;
using BatchRender.Model.Configuration;
using BatchRender.Model.Quantization;
using TorchSharp;
using static TorchSharp.torch;

namespace BatchRender.Model.Benchmarks;

/// <summary>One Linear shape timed with fp32 <c>F.linear</c> and each int8 kernel available on the device (median ms).</summary>
public sealed record KernelTiming(
    [property: JsonPropertyName("layer")] string Layer,
    [property: JsonPropertyName("m")] long M,
    [property: JsonPropertyName("k")] long K,
    [property: JsonPropertyName("n")] long N,
    [property: JsonPropertyName("ms")] IReadOnlyDictionary<string, double> Ms);

/// <summary>
/// The evidence behind <see cref="Int8Kernels.ChooseFor"/>: the transformer block's Linear shapes, timed round-robin
/// with fp32 and the int8 kernels (fbgemm and the portable reference on CPU, <c>_int_mm</c> and the reference on CUDA).
/// </summary>
public static class Int8KernelBenchmark
{
    public static IReadOnlyList<KernelTiming> Run(HunyuanDiTConfig c, long tokens, int batch, Device device, int repeats = 5)
    {
        long rows = tokens * batch, d = c.InnerDim, ff = c.FeedForwardInnerDim, text = (long)batch * c.ContextLength;
        var shapes = new (string Layer, long M, long K, long N)[]
        {
            ("attn1.to_qkv (fused)", rows, d, 3 * d), ("attn1.to_out.0", rows, d, d), ("attn2.to_k+to_v (fused)", text, c.CrossAttentionDim, 2 * d),
            ("ff.net.0.proj", rows, d, ff), ("ff.net.2", rows, ff, d), ("norm1.linear", batch, d, d),
        };
        var kernels = device.type == DeviceType.CUDA
            ? new[] { Int8KernelKind.IntMm, Int8KernelKind.Reference }
            : FbgemmInt8Kernel.IsSupported ? new[] { Int8KernelKind.Fbgemm, Int8KernelKind.Reference } : new[] { Int8KernelKind.Reference };
        var results = new List<KernelTiming>();
        using var noGrad = torch.no_grad();
        foreach (var (layer, m, k, n) in shapes)
        {
            using var scope = NewDisposeScope();
            var gen = new Generator(42);
            var w = (torch.randn(n, k, generator: gen) * 0.02).to(device);
            var b = torch.zeros(n).to(device);
            var x = torch.randn(m, k, generator: gen).to(device);
            var runs = new List<(string Name, Func<Tensor> Run)> { ("fp32", () => torch.nn.functional.linear(x, w, b)) };
            var packed = kernels.Select(kind => Int8Kernels.Prepare(kind, w, b, device)).ToList();
            runs.AddRange(packed.Select(p => (p.Kind.ToString().ToLowerInvariant(), (Func<Tensor>)(() => p.Forward(x)))));
            var samples = runs.ToDictionary(r => r.Name, _ => new List<double>());
            for (int r = -1; r < repeats; r++)           // round -1 warms up
                foreach (var (name, run) in runs)
                {
                    var sw = Stopwatch.StartNew();
                    using (run()) if (device.type == DeviceType.CUDA) torch.cuda.synchronize(device);
                    if (r >= 0) samples[name].Add(sw.Elapsed.TotalMilliseconds);
                }
            foreach (var p in packed) p.Dispose();
            results.Add(new KernelTiming(layer, m, k, n, samples.ToDictionary(s => s.Key, s => Math.Round(s.Value.Order().ElementAt(s.Value.Count / 2), 3))));
        }
        return results;
    }
}
