using BatchRender.Model.Configuration;
using BatchRender.Model.Pipelines;
using BatchRender.Model.Quantization;
using BatchRender.Model.Transformers;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;
using static TorchSharp.torch.nn;

namespace BatchRender.Model.Tests.Quantization;

/// <summary>Quantization modes applied to a small real HunyuanDiT2DModel (4 blocks, block 3 with a long skip).</summary>
public class ModelQuantizerTests
{
    /// <summary>Wide enough that per-channel overhead (scale, offsets, bias) stays small, as in the real model.</summary>
    internal static HunyuanDiTConfig Config { get; } = SmallModels.Config(layers: 4) with
    {
        NumAttentionHeads = 4, AttentionHeadDim = 32, HiddenSize = 128, CrossAttentionDim = 64, CrossAttentionDimT5 = 64, PooledProjectionDim = 64,
    };

    private static readonly string[] BlockLinears =
    [
        "norm1.linear", "attn1.to_q", "attn1.to_k", "attn1.to_v", "attn1.to_out.0",
        "attn2.to_q", "attn2.to_k", "attn2.to_v", "attn2.to_out.0", "ff.net.0.proj", "ff.net.2",
    ];

    private static HunyuanDiT2DModel Model(long seed = 0) => SmallModels.Build(Config, seed);
    private static SmallModels.Inputs Inputs() => SmallModels.RandomInputs(Config, batch: 2, height: 8, width: 8);

    [Fact]
    public void Int8_replaces_exactly_the_block_linears_and_fuses_qkv()
    {
        using var model = Model();
        var report = ModelQuantizer.Apply(model, QuantizationMode.Int8Dynamic);

        var expected = Enumerable.Range(0, 4).SelectMany(i => BlockLinears.Select(n => $"blocks.{i}.{n}")).Order().ToList();
        Assert.Equal(expected, report.ReplacedLinears.Order().ToList());
        Assert.Equal(Enumerable.Range(0, 4).SelectMany(i => new[]
            { $"blocks.{i}.attn1.to_q+blocks.{i}.attn1.to_k+blocks.{i}.attn1.to_v", $"blocks.{i}.attn2.to_k+blocks.{i}.attn2.to_v" }), report.FusedGroups);
        Assert.Equal(Int8KernelKind.Fbgemm, report.Kernel);
        Assert.IsType<Linear>(model.proj_out);
        Assert.IsType<Linear>(model.text_embedder.linear_1);
        Assert.IsType<DynamicQuantizedLinear>(model.blocks[0].norm1.linear);
        Assert.IsType<DynamicQuantizedLinear>(model.blocks[2].attn2.to_q);
        Assert.IsType<DynamicQuantizedLinear>(model.named_modules().Single(m => m.name == "blocks.1.ff.net.0.proj").module);
        Assert.IsType<Linear>(model.blocks[3].skip_linear);   // precision-critical: kept in fp32
        Assert.IsType<FusedProjectionSlice>(model.blocks[0].attn1.to_v);
        Assert.NotNull(model.blocks[0].attn1.QkvProjection);
        // The registry agrees with the fields: no fp32 weights of the blocks' Linears remain, everything else does.
        var parameterNames = model.named_parameters().Select(p => p.name).ToHashSet();
        Assert.DoesNotContain(parameterNames, n => expected.Any(l => n.StartsWith(l + ".")));
        Assert.Contains("blocks.0.attn1.norm_q.weight", parameterNames);
        Assert.Contains("blocks.3.skip_norm.weight", parameterNames);
        Assert.Contains("proj_out.weight", parameterNames);
        Assert.IsType<DynamicQuantizedLinear>(model.named_modules().Single(m => m.name == "blocks.1.ff.net.2").module);
    }

    [Fact]
    public void Int8_model_output_is_faithful_and_memory_is_at_most_0_3x()
    {
        using var model = Model(1);
        var inputs = Inputs();
        var reference = inputs.Run(model);

        var report = ModelQuantizer.Apply(model, QuantizationMode.Int8Dynamic);
        var y = inputs.Run(model);

        var snr = Fidelity.SnrDb(y, reference);
        Assert.True(snr >= 30, $"int8 vs fp32 SNR {snr:F1} dB");
        Assert.True(report.MemoryRatio <= 0.3, $"quantized/fp32 bytes = {report.MemoryRatio:F3}");
        long ff = Config.FeedForwardInnerDim;
        long perBlock = 7 * (128 * 128 + 128) + 2 * (128 * 64 + 128) + (ff * 128 + ff) + (128 * ff + 128);
        Assert.Equal(4 * 4 * perBlock, report.Fp32Bytes);   // the skip Linear (256 -> 128) stays fp32
    }

    [Fact]
    public void Fused_projections_give_the_same_model_output_as_unfused()
    {
        var inputs = Inputs();
        using var fused = Model(2);
        using var unfused = Model(2);
        // The same weights, whatever other tests running in parallel did to the global RNG meanwhile.
        using (torch.no_grad()) unfused.load_state_dict(fused.state_dict());
        ModelQuantizer.Apply(fused, QuantizationMode.Int8Dynamic);
        ModelQuantizer.Apply(unfused, QuantizationMode.Int8Dynamic, new QuantizationOptions { FuseProjections = false });
        Assert.Null(unfused.blocks[0].attn1.QkvProjection);
        var (a, b) = (inputs.Run(fused), inputs.Run(unfused));
        Assert.True(Identical(a, b), $"max difference {(a - b).abs().max().item<float>()} of max {b.abs().max().item<float>()}");
    }

    [Theory]
    [InlineData(Int8KernelKind.Fbgemm)]
    [InlineData(Int8KernelKind.Reference)]
    public void Fused_linear_equals_separate_int8_linears(Int8KernelKind kernel)
    {
        using var _ = torch.no_grad();
        using var scope = NewDisposeScope();
        torch.manual_seed(4);
        var linears = new[] { Linear(96, 96), Linear(96, 40), Linear(96, 96) };
        var x = torch.randn(2, 33, 96);
        var separate = linears.Select(l => new DynamicQuantizedLinear(l, kernel).call(x)).ToList();

        using var fused = new DynamicQuantizedFusedLinear(linears, kernel);
        var parts = fused.ForwardSplit(x);
        for (int i = 0; i < 3; i++)
            Assert.True(Identical(parts[i], separate[i]), $"part {i} differs: max {(parts[i] - separate[i]).abs().max().item<float>()}");
        Assert.True(Identical(new FusedProjectionSlice(fused, 1).call(x), separate[1]));
    }

    [Fact]
    public void Name_filter_selects_layers()
    {
        using var all = Model();
        var report = ModelQuantizer.Apply(all, QuantizationMode.Int8Dynamic, new QuantizationOptions { Include = QuantizationOptions.AllLinears });
        Assert.Contains("proj_out", report.ReplacedLinears);
        Assert.Contains("time_extra_emb.pooler.q_proj", report.ReplacedLinears);
        Assert.IsType<DynamicQuantizedLinear>(all.proj_out);

        using var some = Model();
        var only = ModelQuantizer.Apply(some, QuantizationMode.Int8Dynamic, new QuantizationOptions { Include = n => n.EndsWith("ff.net.2") });
        Assert.Equal(["blocks.0.ff.net.2", "blocks.1.ff.net.2", "blocks.2.ff.net.2", "blocks.3.ff.net.2"], only.ReplacedLinears);
        Assert.Empty(only.FusedGroups);
    }

    [Fact]
    public void A_linear_in_a_field_typed_Linear_is_refused_with_the_field_name()
    {
        using var model = new HardTyped();
        var e = Assert.Throws<ArgumentException>(() => ModelQuantizer.Apply(model, QuantizationMode.Int8Dynamic, new QuantizationOptions { Include = QuantizationOptions.AllLinears }));
        Assert.Contains("HardTyped.proj", e.Message);
    }

    private sealed class HardTyped : Module<Tensor, Tensor>
    {
        public Linear proj = Linear(16, 16);
        public HardTyped() : base(nameof(HardTyped)) => RegisterComponents();
        public override Tensor forward(Tensor x) => proj.call(x);
    }

    [Fact]
    public void Bf16_on_a_cpu_without_native_bf16_falls_back_to_fp32_with_a_warning()
    {
        // Machines of this kind differ (AVX2 only; AVX-512 with BF16): the CPU's answer is fixed here for both paths.
        using var model = Model();
        var report = ModelQuantizer.Apply(model, QuantizationMode.BFloat16, new QuantizationOptions { CpuHasNativeBFloat16 = false });
        Assert.Equal(QuantizationMode.None, report.AppliedMode);
        Assert.Contains("no native bf16", report.Warning);
        Assert.Empty(report.ReplacedLinears);
        Assert.IsType<Linear>(model.blocks[0].attn1.to_q);

        using var native = Model();
        var applied = ModelQuantizer.Apply(native, QuantizationMode.BFloat16, new QuantizationOptions { CpuHasNativeBFloat16 = true });
        Assert.Equal(QuantizationMode.BFloat16, applied.AppliedMode);
        Assert.Null(applied.Warning);
        Assert.NotEmpty(applied.ReplacedLinears);
    }

    [Fact]
    public void Cpu_flags_are_parsed_from_cpuinfo()
    {
        const string cpuinfo = "processor\t: 0\nmodel name\t: X\nflags\t\t: fpu sse2 avx2 avx512f avx512_bf16 amx_tile\n\nprocessor\t: 1\nflags\t\t: fpu\n";
        Assert.True(CpuFeatures.HasNativeBFloat16In(CpuFeatures.ParseCpuInfoFlags(cpuinfo)));
        Assert.False(CpuFeatures.HasNativeBFloat16In(CpuFeatures.ParseCpuInfoFlags("flags\t: fpu avx2 fma\n")));
    }

    [Fact]
    public void None_changes_nothing()
    {
        using var model = Model();
        var report = ModelQuantizer.Apply(model, QuantizationMode.None);
        Assert.Empty(report.ReplacedLinears);
        Assert.Equal(0, report.MemoryRatio);
    }

    [Fact]
    public void Requantizing_at_load_gives_identical_outputs()
    {
        // Quantized models are not saved: the fp32 checkpoint is loaded and quantized again, deterministically.
        using var dir = TestDevice.TempDir();
        var inputs = Inputs();
        Tensor first;
        using (var original = Model(3))
        {
            original.SavePretrained(dir.Path);
            ModelQuantizer.Apply(original, QuantizationMode.Int8Dynamic);
            first = inputs.Run(original);
        }
        using var loaded = HunyuanDiT2DModel.FromPretrained(dir.Path);
        ModelQuantizer.Apply(loaded, QuantizationMode.Int8Dynamic);
        Assert.True(Identical(inputs.Run(loaded), first));
    }

    internal static bool Identical(Tensor a, Tensor b) => a.shape.SequenceEqual(b.shape) && a.eq(b).all().item<bool>();
}
