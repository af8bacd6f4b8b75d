using BatchRender.Model.Embeddings;
using BatchRender.Model.Loading;
using BatchRender.Model.Transformers;
using TorchSharp;
using static TorchSharp.torch;

namespace BatchRender.Model.Tests;

/// <summary>
/// The TorchSharp forward against diffusers' own HunyuanDiT2DModel run on the same small random config and weights
/// (bench/golden/make_hunyuan_dit_golden.py, PyTorch 1.13, fp32). Weights are loaded through the strict loader from the
/// fp16 file Python wrote; the RoPE tables are compared with diffusers' get_2d_rotary_pos_embed on a non-square grid.
/// </summary>
public class GoldenVectorTests
{
    private static string Folder(string variant) => Path.Combine(AppContext.BaseDirectory, "Golden", variant);

    /// <summary>max |a - b| relative to max |reference|.</summary>
    private static double RelativeError(Tensor reference, Tensor actual)
        => (reference.ToCpu() - actual.ToCpu()).abs().max().item<float>() / reference.abs().max().item<float>();

    [Theory]
    [InlineData("hunyuan-dit-v12-small")]
    [InlineData("hunyuan-dit-v11-small")]
    public void Forward_MatchesDiffusers_Within1e4Relative(string variant)
    {
        var folder = Folder(variant);
        var d = TestDevice.Current;
        var io = SafetensorsFile.ReadHeader(Path.Combine(folder, "io.safetensors")).ReadAll();
        var model = HunyuanDiT2DModel.FromPretrained(folder, d);
        Assert.Equal(io.ContainsKey("style"), model.Config.UseStyleCondAndImageMetaSize);

        var height = (int)io["x"].shape[2] * 8;
        var width = (int)io["x"].shape[3] * 8;
        var rope = model.RotaryTables(height, width, device: d);
        Assert.True(RelativeError(io["rope_cos"], rope.Cos) < 1e-6, "RoPE cos differs from diffusers");
        Assert.True(RelativeError(io["rope_sin"], rope.Sin) < 1e-6, "RoPE sin differs from diffusers");

        using var _ = torch.no_grad();
        var output = model.forward(io["x"].to(d), io["timestep"].to(d), io["bert"].to(d), io["bert_mask"].to(d),
                                   io["t5"].to(d), io["t5_mask"].to(d), rope,
                                   io.GetValueOrDefault("image_meta_size")?.to(d), io.GetValueOrDefault("style")?.to(d));
        double error = RelativeError(io["output"], output);
        Assert.True(error < 1e-4, $"{variant}: relative error {error:E2} vs diffusers");
    }
}
