using BatchRender.Model.Autoencoders;
using BatchRender.Model.Tests.Golden;
using BatchRender.Model.Tests.TextEncoders;
using static TorchSharp.torch;

namespace BatchRender.Model.Tests.Autoencoders;

/// <summary>AutoencoderKL against diffusers' own AutoencoderKL (bench/golden/make_golden.py) at a small random config, fp32.</summary>
public class AutoencoderKLGoldenTests
{
    [Fact]
    public void Encode_mean_and_decode_match_diffusers()
    {
        using var golden = new GoldenFile("vae.safetensors");
        var config = AutoencoderKLConfig.Parse(TextEncoderGoldenTests.ConfigSection("vae"), "Golden/configs.json");
        using var vae = golden.LoadInto(new AutoencoderKL(config));
        using var _ = no_grad();
        GoldenFile.AssertClose(golden["encoded"], vae.Encode(golden["image"]));
        GoldenFile.AssertClose(golden["decoded"], vae.Decode(golden["latents"]));
    }
}
