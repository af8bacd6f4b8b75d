using TorchSharp;
using static TorchSharp.torch;

namespace BatchRender.Model.Tests;

/// <summary>The device the model tests run on: BATCHRENDER_TEST_DEVICE (cpu by default; "cuda" runs the same tests on a GPU).</summary>
public static class TestDevice
{
    public static Device Current { get; } = Resolve();

    private static Device Resolve()
    {
        var name = Environment.GetEnvironmentVariable("BATCHRENDER_TEST_DEVICE");
        if (string.IsNullOrWhiteSpace(name) || name == "cpu") return torch.CPU;
        if (name.StartsWith("cuda") && !torch.cuda.is_available())
            throw new InvalidOperationException($"BATCHRENDER_TEST_DEVICE={name} but CUDA is not available in this build");
        return torch.device(name);
    }

    /// <summary>A fresh scratch directory under the temp folder, deleted when disposed.</summary>
    public static TempDirectory TempDir() => new();
}

public sealed class TempDirectory : IDisposable
{
    public string Path { get; } = Directory.CreateTempSubdirectory("batchrender-model-tests-").FullName;
    public void Dispose() { try { Directory.Delete(Path, recursive: true); } catch (IOException) { } }
}
