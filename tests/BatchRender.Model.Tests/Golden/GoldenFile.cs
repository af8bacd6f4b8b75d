using TorchSharp;
using TorchSharp.PyBridge;
using static TorchSharp.torch;

namespace BatchRender.Model.Tests.Golden;

/// <summary>
/// A golden-vector file written by bench/golden/make_golden.py: model weights under their Hugging Face names plus
/// inputs and reference outputs under "golden.*". Tests run on <see cref="TestDevice.Current"/>.
/// </summary>
internal sealed class GoldenFile : IDisposable
{
    private readonly Dictionary<string, Tensor> _tensors;

    public GoldenFile(string name)
    {
        var path = Path.Combine(AppContext.BaseDirectory, "Golden", name);
        _tensors = Safetensors.LoadStateDict(path);
    }

    public static Device Device => TestDevice.Current;

    /// <summary>The model weights (every key not starting with "golden.").</summary>
    public Dictionary<string, Tensor> Weights =>
        _tensors.Where(kv => !kv.Key.StartsWith("golden.", StringComparison.Ordinal)).ToDictionary(kv => kv.Key, kv => kv.Value);

    public Tensor this[string goldenKey] => _tensors["golden." + goldenKey].to(Device);

    /// <summary>Loads the weights strictly (every key present, none unexpected) and moves the model to the test device.</summary>
    public T LoadInto<T>(T model) where T : nn.Module
    {
        var (missing, unexpected) = model.load_state_dict(Weights, strict: false);
        Assert.True(missing.Count == 0, "missing: " + string.Join(", ", missing));
        Assert.True(unexpected.Count == 0, "unexpected: " + string.Join(", ", unexpected));
        model.to(Device);
        model.eval();
        return model;
    }

    /// <summary>max |actual - expected| / max |expected| &lt;= rtol (fp32 reference vs fp32 TorchSharp).</summary>
    public static void AssertClose(Tensor expected, Tensor actual, double rtol = 1e-4)
    {
        Assert.Equal(expected.shape, actual.shape);
        var e = expected.to(CPU).to_type(ScalarType.Float64);
        var a = actual.to(CPU).to_type(ScalarType.Float64);
        double scale = e.abs().max().item<double>();
        double err = (a - e).abs().max().item<double>();
        Assert.True(err <= rtol * scale, $"max |diff| {err:G4} exceeds {rtol} x max |expected| ({scale:G4})");
    }

    public void Dispose()
    {
        foreach (var t in _tensors.Values) t.Dispose();
    }
}
