using BatchRender.Model.Pipelines;
using BatchRender.Model.Quantization;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;
using static TorchSharp.torch.nn;

namespace BatchRender.Model.Tests.Quantization;

public class ModelQuantizerTests
{
    private static readonly string[] BlockLinears =
        ["norm1.linear", "attn1.to_q", "attn1.to_k", "attn1.to_v", "attn1.to_out.0", "ff.net.0", "ff.net.2"];

    [Fact]
    public void Int8_replaces_exactly_the_block_linears_and_fuses_qkv()
    {
        using var _ = torch.no_grad();
        using var model = StandInModel.Create(1);
        var report = ModelQuantizer.Apply(model, QuantizationMode.Int8Dynamic);

        var expected = Enumerable.Range(0, 2).SelectMany(i => BlockLinears.Select(n => $"blocks.{i}.{n}")).Order().ToList();
        Assert.Equal(expected, report.ReplacedLinears.Order().ToList());
        Assert.Equal(["blocks.0.attn1.to_q+blocks.0.attn1.to_k+blocks.0.attn1.to_v", "blocks.1.attn1.to_q+blocks.1.attn1.to_k+blocks.1.attn1.to_v"], report.FusedGroups);
        Assert.Equal(Int8KernelKind.Fbgemm, report.Kernel);
        Assert.IsType<Linear>(model.proj_in);
        Assert.IsType<Linear>(model.proj_out);
        Assert.IsType<DynamicQuantizedLinear>(model.blocks[0].norm1.linear);
        Assert.IsType<DynamicQuantizedLinear>(model.blocks[1].attn1.to_out[0]);
        Assert.IsType<FusedProjectionSlice>(model.blocks[0].attn1.to_q);
        // The registry agrees with the fields: no fp32 weights of the blocks' Linears remain.
        var parameterNames = model.named_parameters().Select(p => p.name).ToList();
        Assert.DoesNotContain(parameterNames, n => n.Contains(".linear.") || n.Contains("attn1.") || n.Contains("ff.net."));
        Assert.Contains("proj_in.weight", parameterNames);
        Assert.Contains("blocks.0.norm2.weight", parameterNames);
        Assert.IsType<DynamicQuantizedLinear>(model.named_modules().Single(m => m.name == "blocks.1.ff.net.2").module);
    }

    [Fact]
    public void Int8_model_output_stays_close_and_memory_is_at_most_0_3x()
    {
        using var _ = torch.no_grad();
        using var scope = NewDisposeScope();
        var (x, temb) = StandInModel.Inputs(2);
        using var model = StandInModel.Create(3);
        var reference = model.call(x, temb);

        var report = ModelQuantizer.Apply(model, QuantizationMode.Int8Dynamic);
        var y = model.call(x, temb);

        Assert.True(Int8LinearTests.RelativeError(y, reference) < 0.03, $"relative error {Int8LinearTests.RelativeError(y, reference):P2}");
        Assert.True(report.MemoryRatio <= 0.3, $"quantized/fp32 bytes = {report.MemoryRatio:F3}");
        long fp32 = 2 * (3 * (128 * 128 + 128) + 2 * (128 * 128 + 128) + 2 * (128 * 512) + 512 + 128) * 4L;
        Assert.Equal(fp32, report.Fp32Bytes);
        Assert.All(model.blocks, b => Assert.Equal(1, b.attn1.FusedCalls));
    }

    [Theory]
    [InlineData(Int8KernelKind.Fbgemm)]
    [InlineData(Int8KernelKind.Reference)]
    public void Fused_qkv_equals_three_separate_int8_linears(Int8KernelKind kernel)
    {
        using var _ = torch.no_grad();
        using var scope = NewDisposeScope();
        using var attention = new StandInAttention(96);
        var x = torch.randn(2, 33, 96, generator: new Generator(4));
        var linears = new[] { attention.to_q, attention.to_k, attention.to_v }.Cast<Linear>().ToList();
        var separate = linears.Select(l => new DynamicQuantizedLinear(l, kernel).call(x)).ToList();

        using var fused = new DynamicQuantizedFusedLinear(linears, kernel);
        var parts = fused.ForwardSplit(x);
        for (int i = 0; i < 3; i++)
            Assert.True(Identical(parts[i], separate[i]), $"part {i} differs: max {(parts[i] - separate[i]).abs().max().item<float>()}");
        // A slice standing in for to_k gives the same numbers as the fused path.
        Assert.True(Identical(new FusedProjectionSlice(fused, 1).call(x), separate[1]));
    }

    [Fact]
    public void Name_filter_selects_layers_and_all_linears_includes_the_rest()
    {
        using var _ = torch.no_grad();
        using var model = StandInModel.Create(5);
        var report = ModelQuantizer.Apply(model, QuantizationMode.Int8Dynamic, new QuantizationOptions { Include = QuantizationOptions.AllLinears, FuseProjections = false });
        Assert.Equal(2 * BlockLinears.Length + 2, report.ReplacedLinears.Count);
        Assert.Empty(report.FusedGroups);
        Assert.IsType<DynamicQuantizedLinear>(model.proj_in);
        Assert.IsType<DynamicQuantizedLinear>(model.blocks[0].attn1.to_q);

        using var other = StandInModel.Create(5);
        var only = ModelQuantizer.Apply(other, QuantizationMode.Int8Dynamic, new QuantizationOptions { Include = n => n.EndsWith("ff.net.2") });
        Assert.Equal(["blocks.0.ff.net.2", "blocks.1.ff.net.2"], only.ReplacedLinears);
    }

    internal static bool Identical(Tensor a, Tensor b) => a.shape.SequenceEqual(b.shape) && a.eq(b).all().item<bool>();

    [Fact]
    public void A_linear_in_a_field_typed_Linear_is_refused_with_the_field_name()
    {
        using var model = new HardTyped();
        var e = Assert.Throws<InvalidOperationException>(() => ModelQuantizer.Apply(model, QuantizationMode.Int8Dynamic, new QuantizationOptions { Include = QuantizationOptions.AllLinears }));
        Assert.Contains("HardTyped.proj", e.Message);
        Assert.Contains("Module<Tensor, Tensor>", e.Message);
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
        Assert.False(CpuFeatures.HasNativeBFloat16, "the development machine is AVX2-only");
        using var model = StandInModel.Create(6);
        var report = ModelQuantizer.Apply(model, QuantizationMode.BFloat16);
        Assert.Equal(QuantizationMode.None, report.AppliedMode);
        Assert.Contains("no native bf16", report.Warning);
        Assert.Empty(report.ReplacedLinears);
        Assert.IsType<Linear>(model.blocks[0].attn1.to_q);
    }

    [Fact]
    public void Cpu_flags_are_parsed_from_cpuinfo()
    {
        const string cpuinfo = "processor\t: 0\nmodel name\t: X\nflags\t\t: fpu sse2 avx2 avx512f avx512_bf16 amx_tile\n\nprocessor\t: 1\nflags\t\t: fpu\n";
        var flags = CpuFeatures.ParseCpuInfoFlags(cpuinfo);
        Assert.True(CpuFeatures.HasNativeBFloat16In(flags));
        Assert.False(CpuFeatures.HasNativeBFloat16In(CpuFeatures.ParseCpuInfoFlags("flags\t: fpu avx2 fma\n")));
    }

    [Fact]
    public void None_changes_nothing()
    {
        using var model = StandInModel.Create(7);
        var report = ModelQuantizer.Apply(model, QuantizationMode.None);
        Assert.Empty(report.ReplacedLinears);
        Assert.Equal(0, report.MemoryRatio);
    }

    [Fact]
    public void Requantizing_at_load_gives_identical_outputs()
    {
        // Quantized models are not saved: the fp32 checkpoint is loaded and quantized again, deterministically.
        using var _ = torch.no_grad();
        using var scope = NewDisposeScope();
        var dir = Directory.CreateTempSubdirectory("br-quant-");
        try
        {
            var path = Path.Combine(dir.FullName, "model.dat");
            var (x, temb) = StandInModel.Inputs(8);
            Tensor first;
            using (var original = StandInModel.Create(9))
            {
                original.save(path);
                ModelQuantizer.Apply(original, QuantizationMode.Int8Dynamic);
                first = original.call(x, temb);
            }
            using var loaded = StandInModel.Create(10);   // different init, replaced by the load
            loaded.load(path);
            ModelQuantizer.Apply(loaded, QuantizationMode.Int8Dynamic);
            Assert.True(Identical(loaded.call(x, temb), first));
        }
        finally { dir.Delete(true); }
    }
}
