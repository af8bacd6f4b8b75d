using System.Text.Json;
using System.Text.Json.Nodes;
using BatchRender.Model.Benchmarks;
using BatchRender.Model.Configuration;
using BatchRender.Model.Quantization;

namespace BatchRender.Model.Tests.Quantization;

/// <summary>The model benchmark core on a tiny config (1 repeat): result shape and fidelity numbers, not speed.</summary>
public class ModelBenchmarkTests
{
    private static HunyuanDiTConfig Tiny => ModelBenchmarkConfigs.DemoSize with
    {
        NumLayers = 4, NumAttentionHeads = 2, AttentionHeadDim = 32, HiddenSize = 64,
        CrossAttentionDim = 64, CrossAttentionDimT5 = 64, PooledProjectionDim = 64, TextLen = 8, TextLenT5 = 16,
    };

    private static ModelBenchmarkOptions Options(string? anchor) => new()
    {
        ConfigName = "tiny", Config = Tiny, Batch = 2, Height = 64, Width = 64, Repeats = 1, Threads = 2, AnchorScript = anchor,
    };

    [Fact]
    public void Result_serialises_to_the_bench_json_models_entry()
    {
        var result = ModelBenchmark.Run(Options(anchor: null));
        var json = JsonNode.Parse(JsonSerializer.Serialize(result))!.AsObject();

        Assert.Equal("tiny", (string?)json["config"]);
        Assert.Equal(2, (int?)json["threads"]);
        Assert.Equal(64, (int?)json["size"]);
        var ms = json["ms"]!.AsObject();
        Assert.Equal(["fp32", "bf16", "int8-dynamic", "pytorch-fp32", "pytorch-int8-dynamic"], ms.Select(p => p.Key));
        Assert.True((double?)ms["fp32"] > 0);
        Assert.True((double?)ms["int8-dynamic"] > 0);
        if (CpuFeatures.HasNativeBFloat16)
            Assert.True((double?)ms["bf16"] > 0);       // timed where the CPU computes bf16 natively
        else
        {
            Assert.Null(ms["bf16"]);                    // emulated bf16 is not timed, and the notes say why
            Assert.Contains(result.Notes, n => n.Contains("bf16 not timed"));
        }
        Assert.Null(ms["pytorch-fp32"]);                // no anchor asked for
        var ratios = json["ratios"]!.AsObject();
        Assert.True((double?)ratios["int8-dynamic/fp32"] > 0);
        Assert.Contains("int8-dynamic/pytorch-int8-dynamic", ratios.Select(p => p.Key));
        Assert.Contains("fp32/pytorch-fp32", ratios.Select(p => p.Key));
        Assert.Equal(["int8-dynamic", "bf16"], json["psnrDb"]!.AsObject().Select(p => p.Key));
        Assert.True(result.SnrDb["int8-dynamic"] >= 30, $"int8 SNR {result.SnrDb["int8-dynamic"]} dB");
        Assert.Equal("fbgemm", result.Int8Kernel);
        Assert.True(result.Memory.Ratio is > 0 and <= 0.3, $"memory ratio {result.Memory.Ratio}");
        Assert.Equal(16, result.Model.Tokens);          // 64 px -> 8x8 latent -> 4x4 patches
    }

    [Fact]
    public void A_model_directory_is_timed_with_its_own_weights_and_rendered_whole_in_each_mode()
    {
        var directory = Directory.CreateTempSubdirectory("batchrender-bench-model-").FullName;
        try
        {
            var model = Pipelines.TinyModelDirectory.Create(directory, framePhase: true);
            var request = PipelineFullRender.DemoRequest with { Width = 64, Height = 64, Steps = 3 };
            var result = ModelBenchmark.Run(new ModelBenchmarkOptions
            {
                ConfigName = "tiny-model", WeightsDirectory = Path.Combine(model, "transformer"), Batch = 2, Height = 64, Width = 64,
                Repeats = 1, Threads = 2, MeasureKernels = false, FullRender = new PipelineFullRender(model, request, "cpu", 2),
            });
            using (var trained = Transformers.HunyuanDiT2DModel.FromPretrained(Path.Combine(model, "transformer")))
                Assert.Equal(trained.parameters().Sum(p => p.NumberOfElements), result.Model.Parameters);
            Assert.Contains(result.Notes, n => n.Contains("trained weights of"));
            Assert.Equal(3, result.Steps);
            Assert.True(result.RenderMs!["fp32"] > 0 && result.RenderMs["int8-dynamic"] > 0);
            Assert.True(result.Ratios["render int8-dynamic/fp32"] > 0);
            // The same seed and sampler in each mode: the int8 render is the fp32 one up to quantization error.
            Assert.True(result.PsnrDb["int8-dynamic"] is > 20 and < double.PositiveInfinity, $"render PSNR {result.PsnrDb["int8-dynamic"]} dB");
        }
        finally
        {
            Directory.Delete(directory, recursive: true);
        }
    }

    [Fact]
    public void The_forward_runs_on_the_latents_of_the_models_own_vae()
    {
        var result = ModelBenchmark.Run(Options(anchor: null) with { Config = Tiny with { PatchSize = 4 }, VaeScaleFactor = 4, MeasureKernels = false });
        Assert.Equal(16, result.Model.Tokens);          // 64 px -> 16x16 latent (f = 4) -> 4x4 patches of 4 (the demo model's layout)
    }

    /// <summary>The demo model's layout (f = 4 VAE, 4 x 4 patches): the anchor's latent size and RoPE base follow the VAE too.</summary>
    [PyTorchAnchorFact]
    public void PyTorch_anchor_agrees_with_TorchSharp_fp32_at_the_demo_layout()
    {
        var result = ModelBenchmark.Run(Options(PyTorchAnchorFactAttribute.Script) with { Config = Tiny with { PatchSize = 4 }, VaeScaleFactor = 4, MeasureKernels = false });
        Assert.Equal(16, result.Model.Tokens);
        Assert.True(result.SnrDb["pytorch-fp32"] >= 80, $"TorchSharp vs PyTorch fp32 SNR {result.SnrDb["pytorch-fp32"]} dB; {string.Join("; ", result.Notes)}");
    }

    /// <summary>The demo model's extensions (the frame phase in temb and as a context token that also reads the pooled
    /// text) in the anchor too, so `bench --model` on the demo weights compares like with like.</summary>
    [PyTorchAnchorFact]
    public void PyTorch_anchor_agrees_with_TorchSharp_fp32_with_the_frame_phase_extensions()
    {
        var result = ModelBenchmark.Run(Options(PyTorchAnchorFactAttribute.Script) with
            { Config = Tiny with { FramePhaseEmbedding = true, FramePhaseToken = true }, MeasureKernels = false });
        Assert.True(result.SnrDb["pytorch-fp32"] >= 80, $"TorchSharp vs PyTorch fp32 SNR {result.SnrDb["pytorch-fp32"]} dB; {string.Join("; ", result.Notes)}");
        result = ModelBenchmark.Run(Options(PyTorchAnchorFactAttribute.Script) with
            { Config = Tiny with { FramePhaseEmbedding = true, FramePhaseToken = true, FramePhaseTokenText = true }, MeasureKernels = false });
        Assert.True(result.SnrDb["pytorch-fp32"] >= 80, $"TorchSharp vs PyTorch fp32 SNR {result.SnrDb["pytorch-fp32"]} dB; {string.Join("; ", result.Notes)}");
    }

    [PyTorchAnchorFact]
    public void PyTorch_anchor_agrees_with_TorchSharp_fp32_on_the_same_weights()
    {
        var result = ModelBenchmark.Run(Options(PyTorchAnchorFactAttribute.Script));
        Assert.True(result.Ms["pytorch-fp32"] > 0, string.Join("; ", result.Notes));
        Assert.True(result.Ms["pytorch-int8-dynamic"] > 0, string.Join("; ", result.Notes));
        // Two implementations of the same forward (ours and the plain-PyTorch anchor): equal to float rounding.
        Assert.True(result.SnrDb["pytorch-fp32"] >= 80, $"TorchSharp vs PyTorch fp32 SNR {result.SnrDb["pytorch-fp32"]} dB");
        Assert.True(result.SnrDb["pytorch-int8-dynamic"] >= 20, $"PyTorch int8 SNR {result.SnrDb["pytorch-int8-dynamic"]} dB");
        Assert.NotNull(result.PyTorch!["engine"]);
        Assert.Equal(2, (int?)result.PyTorch["threads"]);
    }
}

/// <summary>Runs only where Debian's python3-torch is installed (bench/setup-pytorch.sh); skipped otherwise.</summary>
public sealed class PyTorchAnchorFactAttribute : FactAttribute
{
    public static string? Script { get; } = FindScript();

    public PyTorchAnchorFactAttribute()
    {
        if (!File.Exists("/usr/lib/python3/dist-packages/torch/__init__.py"))
            Skip = "python3-torch is not installed (bench/setup-pytorch.sh installs it)";
        else if (Script is null)
            Skip = "bench/hunyuan_dit_reference.py not found above the test directory";
    }

    private static string? FindScript()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            var candidate = Path.Combine(dir.FullName, "bench", "hunyuan_dit_reference.py");
            if (File.Exists(candidate)) return candidate;
        }
        return null;
    }
}
