using BatchRender.Model.Embeddings;
using TorchSharp;
using static TorchSharp.torch;

namespace BatchRender.Model.Tests;

public class RotaryEmbeddingTests
{
    // (height, width) in pixels -> crop start, stop on the 32x32 base grid (HUNYUAN.md section 2.4).
    [Theory]
    [InlineData(1024, 1024, 0, 0, 32, 32)]
    [InlineData(1280, 1280, 0, 0, 32, 32)]
    [InlineData(1024, 768, 0, 4, 32, 28)]
    [InlineData(1152, 864, 0, 4, 32, 28)]
    [InlineData(1280, 960, 0, 4, 32, 28)]
    [InlineData(768, 1024, 4, 0, 28, 32)]
    [InlineData(864, 1152, 4, 0, 28, 32)]
    [InlineData(960, 1280, 4, 0, 28, 32)]
    [InlineData(1280, 768, 0, 6, 32, 25)]
    [InlineData(768, 1280, 6, 0, 25, 32)]
    public void CropRegion_MatchesThePipelineTable(int height, int width, int top, int left, int bottom, int right)
    {
        var (start, stop) = HunyuanRotaryEmbedding.CropRegion(height / 16, width / 16, 32);
        Assert.Equal((top, left), start);
        Assert.Equal((bottom, right), stop);
    }

    /// <summary>Position i of n on an axis from start to stop, as torch.linspace(start, stop*(n-1)/n, n) defines it.</summary>
    private static double Position(int start, int stop, int n, int i)
        => n == 1 ? start : start + i * ((double)stop * (n - 1) / n - start) / (n - 1);

    [Theory]
    [InlineData(1024, 1024, 88)]
    [InlineData(1024, 768, 88)]     // non-square: columns start at 4
    [InlineData(768, 1280, 88)]     // rows start at 6
    [InlineData(1280, 1280, 88)]
    [InlineData(256, 128, 16)]      // small demo-like sizes
    [InlineData(128, 128, 32)]
    public void Tables_EqualTheReferenceFormulas(int height, int width, int headDim)
    {
        var (cos, sin) = HunyuanRotaryEmbedding.RotaryTables(height, width, headDim, device: TestDevice.Current);
        int gh = height / 16, gw = width / 16, quarter = headDim / 4;
        Assert.Equal([(long)gh * gw, headDim], cos.shape);
        Assert.Equal(ScalarType.Float32, cos.dtype);
        var cosValues = cos.ToCpu().data<float>().ToArray();
        var sinValues = sin.ToCpu().data<float>().ToArray();
        var (start, stop) = HunyuanRotaryEmbedding.CropRegion(gh, gw, 32);
        double maxError = 0;
        for (int r = 0; r < gh; r++)
        for (int c = 0; c < gw; c++)
        {
            int token = r * gw + c;
            double x = Position(start.Left, stop.Right, gw, c), y = Position(start.Top, stop.Bottom, gh, r);
            for (int d = 0; d < headDim; d++)
            {
                int half = headDim / 2;
                double pos = d < half ? x : y;
                int k = (d % half) / 2;                                 // pairs (2k, 2k+1) share a frequency
                double freq = 1.0 / Math.Pow(10000, 2.0 * k / half);
                double expectedCos = Math.Cos(pos * freq), expectedSin = Math.Sin(pos * freq);
                maxError = Math.Max(maxError, Math.Abs(cosValues[token * headDim + d] - expectedCos));
                maxError = Math.Max(maxError, Math.Abs(sinValues[token * headDim + d] - expectedSin));
            }
        }
        Assert.True(maxError < 2e-5, $"max error {maxError}");
        Assert.True(quarter > 0);
    }

    [Fact]
    public void Positions_FollowTorchLinspace_NotNumpyEndpointFalse_OnTheShortAxis()
    {
        // 1024x768: 48 columns from 4; diffusers (torch) ends at 28*47/48 = 27.4167, numpy endpoint=False at 27.5.
        var cols = HunyuanRotaryEmbedding.AxisPositions(4, 28, 48).data<float>().ToArray();
        Assert.Equal(4f, cols[0]);
        Assert.Equal(28.0 * 47 / 48, cols[47], 4);
        var rows = HunyuanRotaryEmbedding.AxisPositions(0, 32, 64).data<float>().ToArray();
        Assert.Equal(Enumerable.Range(0, 64).Select(i => i * 0.5f), rows);   // start 0: identical to numpy
    }

    [Fact]
    public void Apply_RotatesAdjacentPairs_InFloat32()
    {
        torch.manual_seed(2);
        var x = torch.randn([2, 3, 6, 8]).to(TestDevice.Current);
        var angles = torch.rand([6, 4]) * 10;
        var cos = angles.cos().repeat_interleave(2, dim: 1).to(TestDevice.Current);
        var sin = angles.sin().repeat_interleave(2, dim: 1).to(TestDevice.Current);
        var y = HunyuanRotaryEmbedding.Apply(x, cos, sin).ToCpu().data<float>().ToArray();
        var xs = x.ToCpu().data<float>().ToArray();
        var a = angles.data<float>().ToArray();
        for (int bh = 0; bh < 6; bh++)
        for (int s = 0; s < 6; s++)
        for (int k = 0; k < 4; k++)
        {
            int i = (bh * 6 + s) * 8 + 2 * k;
            double c = Math.Cos(a[s * 4 + k]), sn = Math.Sin(a[s * 4 + k]);
            Assert.Equal(xs[i] * c - xs[i + 1] * sn, y[i], 4);
            Assert.Equal(xs[i + 1] * c + xs[i] * sn, y[i + 1], 4);
        }
        Assert.Equal(ScalarType.Float16, HunyuanRotaryEmbedding.Apply(x.to(ScalarType.Float16), cos, sin).dtype);
    }
}
