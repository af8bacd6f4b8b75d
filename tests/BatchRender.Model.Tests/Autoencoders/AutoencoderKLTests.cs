using BatchRender.Model.Autoencoders;
using TorchSharp;
using TorchSharp.PyBridge;
using static TorchSharp.torch;

namespace BatchRender.Model.Tests.Autoencoders;

public class AutoencoderKLTests
{
    // madebyollin/sdxl-vae-fp16-fix config.json, the VAE of HunyuanDiT-v1.2-Diffusers (HUNYUAN.md 4.7).
    private const string SdxlVaeJson = """
        {"_class_name": "AutoencoderKL", "_diffusers_version": "0.18.0.dev0", "act_fn": "silu",
         "block_out_channels": [128, 256, 512, 512],
         "down_block_types": ["DownEncoderBlock2D", "DownEncoderBlock2D", "DownEncoderBlock2D", "DownEncoderBlock2D"],
         "in_channels": 3, "latent_channels": 4, "layers_per_block": 2, "norm_num_groups": 32, "out_channels": 3,
         "sample_size": 512, "scaling_factor": 0.13025, "force_upcast": false,
         "up_block_types": ["UpDecoderBlock2D", "UpDecoderBlock2D", "UpDecoderBlock2D", "UpDecoderBlock2D"]}
        """;

    private static readonly AutoencoderKLConfig Tiny = new()
    {
        BlockOutChannels = [16, 32], LayersPerBlock = 1, NormNumGroups = 8, LatentChannels = 4, ScalingFactor = 0.5,
    };

    /// <summary>diffusers' AutoencoderKL state-dict keys and shapes, enumerated from its module structure.</summary>
    private static IEnumerable<(string Name, long[] Shape)> ExpectedKeys(AutoencoderKLConfig c)
    {
        IEnumerable<(string, long[])> Conv(string p, long i, long o, long k) => [(p + ".weight", [o, i, k, k]), (p + ".bias", [o])];
        IEnumerable<(string, long[])> Norm(string p, long ch) => [(p + ".weight", [ch]), (p + ".bias", [ch])];
        IEnumerable<(string, long[])> Resnet(string p, long i, long o) =>
            Norm(p + ".norm1", i).Concat(Conv(p + ".conv1", i, o, 3)).Concat(Norm(p + ".norm2", o)).Concat(Conv(p + ".conv2", o, o, 3))
                .Concat(i != o ? Conv(p + ".conv_shortcut", i, o, 1) : []);
        IEnumerable<(string, long[])> Linear(string p, long ch) => [(p + ".weight", [ch, ch]), (p + ".bias", [ch])];
        IEnumerable<(string, long[])> Mid(string p, long ch) =>
            Resnet(p + ".resnets.0", ch, ch).Concat(Resnet(p + ".resnets.1", ch, ch)).Concat(Norm(p + ".attentions.0.group_norm", ch))
                .Concat(Linear(p + ".attentions.0.to_q", ch)).Concat(Linear(p + ".attentions.0.to_k", ch))
                .Concat(Linear(p + ".attentions.0.to_v", ch)).Concat(Linear(p + ".attentions.0.to_out.0", ch));

        var ch = c.BlockOutChannels;
        long z = c.LatentChannels;
        var keys = Conv("encoder.conv_in", 3, ch[0], 3).ToList();
        for (int i = 0; i < ch.Length; i++)
        {
            for (int j = 0; j < c.LayersPerBlock; j++)
                keys.AddRange(Resnet($"encoder.down_blocks.{i}.resnets.{j}", j == 0 ? (i == 0 ? ch[0] : ch[i - 1]) : ch[i], ch[i]));
            if (i < ch.Length - 1) keys.AddRange(Conv($"encoder.down_blocks.{i}.downsamplers.0.conv", ch[i], ch[i], 3));
        }
        keys.AddRange(Mid("encoder.mid_block", ch[^1]));
        keys.AddRange(Norm("encoder.conv_norm_out", ch[^1]));
        keys.AddRange(Conv("encoder.conv_out", ch[^1], 2 * z, 3));
        var r = ch.Reverse().ToArray();
        keys.AddRange(Conv("decoder.conv_in", z, r[0], 3));
        keys.AddRange(Mid("decoder.mid_block", r[0]));
        for (int i = 0; i < r.Length; i++)
        {
            for (int j = 0; j <= c.LayersPerBlock; j++)
                keys.AddRange(Resnet($"decoder.up_blocks.{i}.resnets.{j}", j == 0 ? (i == 0 ? r[0] : r[i - 1]) : r[i], r[i]));
            if (i < r.Length - 1) keys.AddRange(Conv($"decoder.up_blocks.{i}.upsamplers.0.conv", r[i], r[i], 3));
        }
        keys.AddRange(Norm("decoder.conv_norm_out", r[^1]));
        keys.AddRange(Conv("decoder.conv_out", r[^1], 3, 3));
        keys.AddRange(Conv("quant_conv", 2 * z, 2 * z, 1));
        keys.AddRange(Conv("post_quant_conv", z, z, 1));
        return keys;
    }

    [Fact]
    public void Sdxl_vae_config_builds_on_meta_with_diffusers_keys_and_83_65M_parameters()
    {
        var config = AutoencoderKLConfig.Parse(SdxlVaeJson);
        Assert.Equal(0.13025, config.ScalingFactor);
        Assert.Equal(8, config.ScaleFactor);
        using var vae = new AutoencoderKL(config, device: torch.META);
        var actual = vae.state_dict().ToDictionary(p => p.Key, p => p.Value.shape); // what savers and loaders see
        var expected = ExpectedKeys(config).ToDictionary(k => k.Name, k => k.Shape);
        Assert.Equal(expected.Keys.Order(), actual.Keys.Order());
        foreach (var (name, shape) in expected) Assert.True(shape.SequenceEqual(actual[name]), name);
        Assert.Empty(vae.named_buffers());
        // and the list diffusers' own AutoencoderKL gives for this config (bench/golden/make_golden.py)
        var diffusers = File.ReadAllLines(Path.Combine(AppContext.BaseDirectory, "Golden", "sdxl-vae-keys.tsv"))
            .Select(l => l.Split('\t')).ToDictionary(p => p[0], p => p[1]);
        Assert.Equal(diffusers.Keys.Order(), actual.Keys.Order());
        foreach (var (name, shape) in actual) Assert.Equal(diffusers[name], string.Join(",", shape));
        long total = actual.Values.Sum(s => s.Aggregate(1L, (a, b) => a * b));
        Assert.Equal(83_653_863L, total);
        Assert.Equal(49_490_179L, actual.Where(kv => kv.Key.StartsWith("decoder.")).Sum(kv => kv.Value.Aggregate(1L, (a, b) => a * b)));
    }

    [Fact]
    public void Quant_conv_flags_and_shift_factor_come_from_the_config()
    {
        var config = AutoencoderKLConfig.Parse("""
            {"block_out_channels": [16, 32], "norm_num_groups": 8, "layers_per_block": 1,
             "use_quant_conv": false, "use_post_quant_conv": false, "shift_factor": 0.0609, "scaling_factor": 1.5035,
             "latent_channels": 16, "mid_block_add_attention": false}
            """);
        using var vae = new AutoencoderKL(config, device: torch.META);
        var names = vae.named_parameters().Select(p => p.name).ToHashSet();
        Assert.DoesNotContain("quant_conv.weight", names);
        Assert.DoesNotContain("post_quant_conv.weight", names);
        Assert.DoesNotContain("encoder.mid_block.attentions.0.to_q.weight", names);
        Assert.Equal(0.0609, config.ShiftFactor);
    }

    [Fact]
    public void Encode_and_decode_shapes_follow_the_scale_factor()
    {
        torch.manual_seed(3);
        using var vae = new AutoencoderKL(Tiny);
        vae.eval();
        using var _ = no_grad();
        Assert.Equal(2, vae.ScaleFactor);
        var image = rand(2, 3, 16, 24) * 2 - 1;
        var latents = vae.Encode(image);
        Assert.Equal(new long[] { 2, 4, 8, 12 }, latents.shape);
        var decoded = vae.Decode(latents);
        Assert.Equal(new long[] { 2, 3, 16, 24 }, decoded.shape);
        Assert.True(decoded.isfinite().all().item<bool>(), "a freshly initialised VAE must decode to finite values");
        Assert.Equal(new long[] { 2, 3, 16, 24 }, vae.forward(image).shape);
        Assert.Throws<ArgumentException>(() => vae.Encode(rand(1, 3, 15, 16)));
        Assert.Throws<ArgumentException>(() => vae.Decode(rand(1, 3, 8, 8)));
    }

    [Fact]
    public void Encode_scales_the_posterior_mean_and_samples_with_the_generator()
    {
        torch.manual_seed(4);
        using var vae = new AutoencoderKL(Tiny with { ShiftFactor = 0.25 });
        vae.eval();
        using var _ = no_grad();
        var image = rand(1, 3, 8, 8) * 2 - 1;
        var (mean, logVar) = vae.EncodeDistribution(image);
        Assert.True(vae.Encode(image).allclose((mean - 0.25) * 0.5, 1e-6, 1e-6));

        var s1 = vae.Encode(image, new Generator(9), sample: true);
        var s2 = vae.Encode(image, new Generator(9), sample: true);
        Assert.True(s1.equal(s2).all().item<bool>());
        var noise = randn(mean.shape, generator: new Generator(9));
        Assert.True(s1.allclose((mean + (0.5 * logVar).exp() * noise - 0.25) * 0.5, 1e-5, 1e-6));

        // Decode undoes the scaling: decoding latents equals the decoder run on the unscaled z.
        var z = randn(1, 4, 4, 4, generator: new Generator(10));
        var viaDecode = vae.Decode(z * 0.5 - 0.25 * 0.5);
        Assert.True(viaDecode.allclose(vae.Decode((z - 0.25) * 0.5), 1e-5, 1e-5));
    }

    [Fact]
    public void Safetensors_round_trip_with_diffusers_names_is_exact()
    {
        torch.manual_seed(5);
        using var a = new AutoencoderKL(Tiny);
        using var b = new AutoencoderKL(Tiny);
        var path = Path.Combine(Path.GetTempPath(), $"vae-{Guid.NewGuid():N}.safetensors");
        try
        {
            a.save_safetensors(path);
            var stored = Safetensors.LoadStateDict(path);
            Assert.Contains("decoder.mid_block.attentions.0.to_out.0.weight", stored.Keys);
            Assert.Contains("encoder.down_blocks.0.downsamplers.0.conv.weight", stored.Keys);
            b.load_safetensors(path, strict: true);
            foreach (var (name, p) in a.named_parameters())
                Assert.True(p.equal(b.get_parameter(name)!).all().item<bool>(), name);
            using var _ = no_grad();
            var z = randn(1, 4, 4, 4);
            Assert.True(a.Decode(z).equal(b.Decode(z)).all().item<bool>());
        }
        finally
        {
            File.Delete(path);
        }
    }

    [Fact]
    public void Config_errors_name_the_file_and_field()
    {
        var e = Assert.Throws<InvalidDataException>(() => AutoencoderKLConfig.Parse("""{"block_out_channels": [128, 100]}""", "vae/config.json"));
        Assert.Contains("vae/config.json", e.Message);
        Assert.Contains("block_out_channels", e.Message);
        var e2 = Assert.Throws<InvalidDataException>(() => AutoencoderKLConfig.Parse("""{"down_block_types": ["CrossAttnDownBlock2D"]}""", "vae/config.json"));
        Assert.Contains("down_block_types", e2.Message);
    }
}
