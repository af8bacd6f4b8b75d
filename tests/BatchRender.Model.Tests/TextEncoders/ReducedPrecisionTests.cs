using BatchRender.Model.Autoencoders;
using BatchRender.Model.TextEncoders;
using TorchSharp;
using static TorchSharp.torch;

namespace BatchRender.Model.Tests.TextEncoders;

/// <summary>The encoders and the VAE run in half precision (as the pipeline may load them) and stay near fp32.</summary>
public class ReducedPrecisionTests
{
    private static void AssertNear(Tensor reference, Tensor actual, double tolerance)
    {
        var r = reference.to_type(ScalarType.Float32).cpu();
        var a = actual.to_type(ScalarType.Float32).cpu();
        Assert.True(a.isfinite().all().item<bool>(), "non-finite values in half precision");
        double err = (r - a).abs().max().item<float>() / r.abs().max().item<float>();
        Assert.True(err < tolerance, $"relative error {err:G3} >= {tolerance}");
    }

    public static TheoryData<ScalarType> HalfTypes => new() { ScalarType.BFloat16, ScalarType.Float16 };

    [Theory]
    [MemberData(nameof(HalfTypes))]
    public void Text_encoders_run_in_half_precision(ScalarType dtype)
    {
        torch.manual_seed(21);
        var ids = tensor(new long[] { 3, 9, 14, 1, 0, 0 }).unsqueeze(0).to(TestDevice.Current);
        var mask = tensor(new long[] { 1, 1, 1, 1, 0, 0 }).unsqueeze(0).to(TestDevice.Current);
        using var _ = no_grad();

        var bert = new BertModel(new BertConfig { VocabSize = 30, HiddenSize = 32, NumHiddenLayers = 2, NumAttentionHeads = 4, IntermediateSize = 64, MaxPositionEmbeddings = 16 });
        bert.to(TestDevice.Current).eval();
        var bertRef = bert.forward(ids, mask);
        bert.to(dtype);
        AssertNear(bertRef[.., ..4], bert.forward(ids, mask)[.., ..4], 0.05);

        var t5 = new T5EncoderModel(new T5Config { VocabSize = 30, DModel = 32, DKv = 8, DFf = 48, NumLayers = 2, NumHeads = 4 });
        t5.to(TestDevice.Current).eval();
        var t5Ref = t5.forward(ids, mask);
        t5.to(dtype);
        AssertNear(t5Ref[.., ..4], t5.forward(ids, mask)[.., ..4], 0.05);
    }

    [Theory]
    [MemberData(nameof(HalfTypes))]
    public void Vae_decodes_in_half_precision(ScalarType dtype)
    {
        torch.manual_seed(22);
        var vae = new AutoencoderKL(new AutoencoderKLConfig { BlockOutChannels = [16, 32], LayersPerBlock = 1, NormNumGroups = 8 });
        vae.to(TestDevice.Current).eval();
        using var _ = no_grad();
        var latents = randn(1, 4, 4, 4).to(TestDevice.Current);
        var reference = vae.Decode(latents);
        vae.to(dtype);
        AssertNear(reference, vae.Decode(latents.to(dtype)), 0.05);
    }
}
