namespace BatchRender.Model.Tests.Quantization;

/// <summary>A fact that runs only when BATCHRENDER_TEST_DEVICE=cuda (a GPU build on a GPU machine); skipped otherwise.</summary>
public sealed class CudaFactAttribute : FactAttribute
{
    public CudaFactAttribute()
    {
        if (!IsCudaRun) Skip = "CUDA tests run only with BATCHRENDER_TEST_DEVICE=cuda";
    }

    public static bool IsCudaRun => string.Equals(Environment.GetEnvironmentVariable("BATCHRENDER_TEST_DEVICE"), "cuda", StringComparison.OrdinalIgnoreCase);
}
