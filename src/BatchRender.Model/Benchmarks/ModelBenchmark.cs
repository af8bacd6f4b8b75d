using System.Diagnostics;
using System.Text.Json;
using System.Text.Json.Nodes;
using BatchRender.Model.Configuration;
using BatchRender.Model.Loading;
using BatchRender.Model.Pipelines;
using BatchRender.Model.Quantization;
using BatchRender.Model.Transformers;
using TorchSharp;
using static TorchSharp.torch;

namespace BatchRender.Model.Benchmarks;

/// <summary>What <see cref="ModelBenchmark.Run"/> measures.</summary>
public sealed record ModelBenchmarkOptions
{
    /// <summary>Name printed in the result ("demo", "v1.2-width").</summary>
    public required string ConfigName { get; init; }
    /// <summary>The transformer's config, timed with random weights; ignored when <see cref="WeightsDirectory"/> is set.</summary>
    public HunyuanDiTConfig? Config { get; init; }
    /// <summary>A transformer directory (config.json + safetensors, e.g. models/demo/transformer) whose trained weights
    /// are timed instead of random ones.</summary>
    public string? WeightsDirectory { get; init; }
    /// <summary>Transformer batch: 2 = one prompt with classifier-free guidance.</summary>
    public int Batch { get; init; } = 2;
    public int Height { get; init; } = 256;
    public int Width { get; init; } = 256;
    /// <summary>Pixels per latent of the model's VAE (8: the SDXL VAE of v1.2 and the demo model's): the forward runs on
    /// the latent size and RoPE tables a render at <see cref="Width"/> x <see cref="Height"/> uses.</summary>
    public int VaeScaleFactor { get; init; } = 8;
    /// <summary>Timed forwards per variant (after one warm-up each); the median is reported.</summary>
    public int Repeats { get; init; } = 5;
    public int Threads { get; init; } = 2;
    /// <summary>"cpu" or "cuda" (the PyTorch anchor runs on CPU only, so it is skipped on CUDA).</summary>
    public string Device { get; init; } = "cpu";
    /// <summary>Seed of the random weights and inputs.</summary>
    public long Seed { get; init; }
    /// <summary>bench/hunyuan_dit_reference.py; null runs no PyTorch anchor.</summary>
    public string? AnchorScript { get; init; }
    /// <summary>Debian's interpreter, which sees python3-torch (bench/setup-pytorch.sh installs it).</summary>
    public string PythonExecutable { get; init; } = "/usr/bin/python3";
    public TimeSpan AnchorTimeout { get; init; } = TimeSpan.FromMinutes(15);
    /// <summary>Scratch folder for the weights, inputs and anchor outputs; a temp folder (deleted afterwards) when null.</summary>
    public string? WorkDirectory { get; init; }
    /// <summary>Also time the block's Linear shapes per int8 kernel (<see cref="Int8KernelBenchmark"/>).</summary>
    public bool MeasureKernels { get; init; } = true;
    /// <summary>The full-render part (decoded image PSNR of a deterministic DDIM render per mode); null = forward only.</summary>
    public IFullRenderBenchmark? FullRender { get; init; }
}

/// <summary>
/// Hook for the pipeline: renders one fixed deterministic request (DDIM, fixed seed) with the transformer in a given
/// mode and returns the decoded image(s) [B, 3, H, W] in [0, 1] and the wall time; the benchmark reports the PSNR of
/// each mode's image against fp32's.
/// </summary>
public interface IFullRenderBenchmark
{
    int Steps { get; }
    (Tensor Image, double Milliseconds) Render(QuantizationMode mode, CancellationToken cancellationToken);
}

/// <summary>The configs <c>bench --model</c> runs.</summary>
public static class ModelBenchmarkConfigs
{
    /// <summary>The real v1.2 matrix shapes (hidden 1408, 16 heads x 88, FFN 6144, text 1024/2048 x 77/256) with few blocks.
    /// 4 blocks: blocks 0..3 with block 3 taking block 0's long skip, as in the full model.</summary>
    public static HunyuanDiTConfig V12Width(int blocks = 4) => HunyuanDiTConfig.V12 with { NumLayers = blocks };

    /// <summary>A laptop-CPU-sized model of the same architecture (stand-in until the demo model's own config is used).</summary>
    public static HunyuanDiTConfig DemoSize { get; } = HunyuanDiTConfig.V12 with
    {
        NumAttentionHeads = 6, AttentionHeadDim = 64, HiddenSize = 384, NumLayers = 8, MlpRatio = 4.0,
        CrossAttentionDim = 384, CrossAttentionDimT5 = 384, PooledProjectionDim = 384, TextLen = 77, TextLenT5 = 64, SampleSize = 16,
    };
}

/// <summary>
/// Times one Hunyuan-DiT transformer forward in TorchSharp (fp32, bf16, int8-dynamic) and, on the same weights and
/// inputs, in PyTorch (eager fp32 and <c>quantize_dynamic</c>, through the anchor script), and measures fidelity.
/// Variants are timed round-robin (one forward of each in turn), and the anchor runs between two halves of the
/// TorchSharp rounds, so a change in machine load hits all variants alike.
/// </summary>
public static class ModelBenchmark
{
    public static ModelBenchmarkResult Run(ModelBenchmarkOptions options, Action<string>? log = null, CancellationToken cancellationToken = default)
    {
        log ??= _ => { };
        if (options.Repeats < 1) throw new ArgumentOutOfRangeException(nameof(options), "Repeats must be at least 1");
        var device = torch.device(options.Device);
        var notes = new List<string>();
        var previousThreads = torch.get_num_threads();
        if (options.Threads > 0) torch.set_num_threads(options.Threads);
        var ownsWorkDirectory = options.WorkDirectory is null;
        var work = options.WorkDirectory ?? Directory.CreateTempSubdirectory("batchrender-bench-").FullName;
        Directory.CreateDirectory(work);
        try
        {
            using var noGrad = torch.no_grad();
            using var scope = NewDisposeScope();
            var modelDirectory = Path.Combine(work, "transformer");
            long parameters;
            HunyuanDiTConfig config;
            torch.manual_seed(options.Seed);
            // Saved in fp32 in the work folder either way: every variant and the anchor load the very same file.
            using (var source = options.WeightsDirectory is { } weights ? HunyuanDiT2DModel.FromPretrained(weights)
                                : new HunyuanDiT2DModel(options.Config ?? throw new ArgumentException("give Config or WeightsDirectory", nameof(options))))
            {
                config = source.Config;
                parameters = source.parameters().Sum(p => p.NumberOfElements);
                source.SavePretrained(modelDirectory);
            }
            if (options.WeightsDirectory is not null) notes.Add($"trained weights of {options.WeightsDirectory}");
            var inputs = Inputs.Random(config, options.Batch, options.Height, options.Width, options.VaeScaleFactor, options.Seed);
            var inputsPath = Path.Combine(work, "inputs.safetensors");
            inputs.Save(inputsPath);
            log($"{options.ConfigName}: {parameters:N0} parameters, batch {options.Batch}, {options.Width}x{options.Height} px, {inputs.Tokens} tokens");

            // The variants, each loaded from the same file.
            var variants = new List<Variant> { new(ModelBenchmarkResult.Fp32, Load(modelDirectory, device), null) };
            var int8Model = Load(modelDirectory, device);
            var int8Report = ModelQuantizer.Apply(int8Model, QuantizationMode.Int8Dynamic);
            variants.Add(new(ModelBenchmarkResult.Int8Dynamic, int8Model, int8Report));
            var bf16Model = Load(modelDirectory, device);
            var bf16Report = ModelQuantizer.Apply(bf16Model, QuantizationMode.BFloat16);
            if (bf16Report.AppliedMode == QuantizationMode.BFloat16) variants.Add(new(ModelBenchmarkResult.Bf16, bf16Model, bf16Report));
            else { notes.Add($"bf16 not timed: {bf16Report.Warning}"); bf16Model.Dispose(); }

            var deviceInputs = inputs.To(device);
            foreach (var v in variants) v.Output = v.Forward(deviceInputs).cpu().DetachFromDisposeScope();   // warm-up; its output is compared
            int firstHalf = (options.Repeats + 1) / 2;
            TimeRounds(variants, deviceInputs, firstHalf, device, cancellationToken);

            JsonObject? anchor = null;
            Dictionary<string, Tensor>? anchorOutputs = null;
            if (options.AnchorScript is null) notes.Add("PyTorch anchor not run (no script given)");
            else if (device.type != DeviceType.CPU) notes.Add("PyTorch anchor not run: it is CPU-only (Debian's python3-torch)");
            else (anchor, anchorOutputs) = RunAnchor(options, modelDirectory, inputsPath, Path.Combine(work, "anchor-out.safetensors"), notes, log, cancellationToken);

            TimeRounds(variants, deviceInputs, options.Repeats - firstHalf, device, cancellationToken);

            var fp32 = variants[0];
            var ms = new Dictionary<string, double?>
            {
                [ModelBenchmarkResult.Fp32] = fp32.Median,
                [ModelBenchmarkResult.Bf16] = variants.FirstOrDefault(v => v.Name == ModelBenchmarkResult.Bf16)?.Median,
                [ModelBenchmarkResult.Int8Dynamic] = variants.First(v => v.Name == ModelBenchmarkResult.Int8Dynamic).Median,
                [ModelBenchmarkResult.PyTorchFp32] = anchor?["ms"]?["fp32"]?.GetValue<double>(),
                [ModelBenchmarkResult.PyTorchInt8Dynamic] = anchor?["ms"]?["int8-dynamic"]?.GetValue<double>(),
            };
            var msMin = new Dictionary<string, double?>
            {
                [ModelBenchmarkResult.Fp32] = fp32.Min,
                [ModelBenchmarkResult.Bf16] = variants.FirstOrDefault(v => v.Name == ModelBenchmarkResult.Bf16)?.Min,
                [ModelBenchmarkResult.Int8Dynamic] = variants.First(v => v.Name == ModelBenchmarkResult.Int8Dynamic).Min,
                [ModelBenchmarkResult.PyTorchFp32] = MinSample(anchor, "fp32"),
                [ModelBenchmarkResult.PyTorchInt8Dynamic] = MinSample(anchor, "int8-dynamic"),
            };
            anchor?.Remove("samplesMs");
            var snr = new Dictionary<string, double?>
            {
                [ModelBenchmarkResult.Int8Dynamic] = Round(Fidelity.SnrDb(variants.First(v => v.Name == ModelBenchmarkResult.Int8Dynamic).Output!, fp32.Output!)),
                [ModelBenchmarkResult.Bf16] = variants.FirstOrDefault(v => v.Name == ModelBenchmarkResult.Bf16) is { } b ? Round(Fidelity.SnrDb(b.Output!, fp32.Output!)) : null,
                [ModelBenchmarkResult.PyTorchFp32] = anchorOutputs?.GetValueOrDefault("output_fp32") is { } pf ? Round(Fidelity.SnrDb(pf, fp32.Output!)) : null,
                [ModelBenchmarkResult.PyTorchInt8Dynamic] = anchorOutputs?.GetValueOrDefault("output_int8") is { } pi && anchorOutputs.GetValueOrDefault("output_fp32") is { } pf2
                    ? Round(Fidelity.SnrDb(pi, pf2)) : null,
            };
            if (snr[ModelBenchmarkResult.PyTorchFp32] is < 60)
                notes.Add($"TorchSharp fp32 and PyTorch fp32 outputs differ ({snr[ModelBenchmarkResult.PyTorchFp32]} dB SNR): the two implementations disagree");

            foreach (var v in variants) v.Model.Dispose();
            var psnr = new Dictionary<string, double?> { [ModelBenchmarkResult.Int8Dynamic] = null, [ModelBenchmarkResult.Bf16] = null };
            Dictionary<string, double?>? renderMs = null;
            if (options.FullRender is { } render)
                (renderMs, psnr) = RunFullRender(render, bf16Report.AppliedMode == QuantizationMode.BFloat16, cancellationToken);

            var kernels = options.MeasureKernels ? Int8KernelBenchmark.Run(config, inputs.Tokens, options.Batch, device, options.Repeats) : null;
            return new ModelBenchmarkResult
            {
                Config = options.ConfigName,
                Threads = torch.get_num_threads(),
                Steps = options.FullRender?.Steps,
                Size = options.Width == options.Height ? options.Width : Math.Max(options.Width, options.Height),
                What = options.FullRender is null
                    ? $"one transformer forward, batch {options.Batch} (CFG), {options.Width}x{options.Height} px"
                    : $"one transformer forward, batch {options.Batch} (CFG), {options.Width}x{options.Height} px (ms, the anchor's too); full render, CFG on, {options.FullRender.Steps} steps, median of 3 after a warm-up render (renderMs, psnrDb)",
                Ms = ms,
                RenderMs = renderMs,
                MsMin = msMin,
                Ratios = new Dictionary<string, double?>
                {
                    ["int8-dynamic/fp32"] = Ratio(ms[ModelBenchmarkResult.Fp32], ms[ModelBenchmarkResult.Int8Dynamic]),
                    ["int8-dynamic/pytorch-int8-dynamic"] = Ratio(ms[ModelBenchmarkResult.PyTorchInt8Dynamic], ms[ModelBenchmarkResult.Int8Dynamic]),
                    ["fp32/pytorch-fp32"] = Ratio(ms[ModelBenchmarkResult.PyTorchFp32], ms[ModelBenchmarkResult.Fp32]),
                    ["bf16/fp32"] = Ratio(ms[ModelBenchmarkResult.Fp32], ms[ModelBenchmarkResult.Bf16]),
                    ["render int8-dynamic/fp32"] = Ratio(renderMs?.GetValueOrDefault(ModelBenchmarkResult.Fp32), renderMs?.GetValueOrDefault(ModelBenchmarkResult.Int8Dynamic)),
                },
                PsnrDb = psnr,
                SnrDb = snr,
                Device = device.ToString(),
                Width = options.Width,
                Height = options.Height,
                Batch = options.Batch,
                Model = new ModelShape(config.HiddenSize, config.NumAttentionHeads, config.AttentionHeadDim, config.NumLayers, inputs.Tokens, parameters),
                Int8Kernel = int8Report.Kernel?.ToString().ToLowerInvariant(),
                Memory = new QuantizedMemory(int8Report.QuantizedBytes, int8Report.Fp32Bytes, Math.Round(int8Report.MemoryRatio, 4)),
                Kernels = kernels,
                PyTorch = anchor,
                Notes = notes,
            };
        }
        finally
        {
            torch.set_num_threads(previousThreads);
            if (ownsWorkDirectory) try { Directory.Delete(work, recursive: true); } catch (IOException) { }
        }
    }

    private static HunyuanDiT2DModel Load(string directory, Device device)
    {
        var model = HunyuanDiT2DModel.FromPretrained(directory, device);
        model.eval();
        return model;
    }

    private sealed class Variant(string name, HunyuanDiT2DModel model, QuantizationReport? report)
    {
        public string Name { get; } = name;
        public HunyuanDiT2DModel Model { get; } = model;
        public QuantizationReport? Report { get; } = report;
        public List<double> Samples { get; } = [];
        public Tensor? Output { get; set; }
        public double? Min => Samples.Count == 0 ? null : Math.Round(Samples.Min(), 2);
        public double? Median => Samples.Count == 0 ? null : Math.Round(Samples.Order().ElementAt(Samples.Count / 2), 2);

        public Tensor Forward(Inputs i) =>
            Model.forward(i.X, i.Timestep, i.Bert, i.BertMask, i.T5, i.T5Mask, i.Rope, i.ImageMetaSize, i.Style);
    }

    private static void TimeRounds(List<Variant> variants, Inputs inputs, int rounds, Device device, CancellationToken ct)
    {
        for (int r = 0; r < rounds; r++)
            foreach (var v in variants)
            {
                ct.ThrowIfCancellationRequested();
                var sw = Stopwatch.StartNew();
                using (var y = v.Forward(inputs))
                    if (device.type == DeviceType.CUDA) torch.cuda.synchronize(device);
                v.Samples.Add(sw.Elapsed.TotalMilliseconds);
            }
    }

    private static (JsonObject? Report, Dictionary<string, Tensor>? Outputs) RunAnchor(
        ModelBenchmarkOptions o, string modelDirectory, string inputsPath, string outputPath, List<string> notes, Action<string> log, CancellationToken ct)
    {
        if (!File.Exists(o.AnchorScript)) { notes.Add($"PyTorch anchor not run: {o.AnchorScript} not found"); return (null, null); }
        var start = new ProcessStartInfo(o.PythonExecutable)
        {
            RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false,
        };
        foreach (var a in new[]
        {
            o.AnchorScript!, Path.Combine(modelDirectory, "diffusion_pytorch_model.safetensors"), Path.Combine(modelDirectory, DiffusersComponent.ConfigFileName),
            o.Batch.ToString(), o.Height.ToString(), o.Width.ToString(), o.Repeats.ToString(), o.Threads.ToString(), outputPath, "--inputs", inputsPath,
            "--vae-scale-factor", o.VaeScaleFactor.ToString(),
        }) start.ArgumentList.Add(a!);
        log($"PyTorch anchor: {o.PythonExecutable} {string.Join(' ', start.ArgumentList)}");
        Process process;
        try { process = Process.Start(start)!; }
        catch (System.ComponentModel.Win32Exception e) { notes.Add($"PyTorch anchor not run: cannot start {o.PythonExecutable}: {e.Message} (run bench/setup-pytorch.sh)"); return (null, null); }
        using (process)
        {
            var stdout = process.StandardOutput.ReadToEndAsync(ct);
            var stderr = process.StandardError.ReadToEndAsync(ct);
            if (!process.WaitForExit(o.AnchorTimeout))
            {
                process.Kill(entireProcessTree: true);
                notes.Add($"PyTorch anchor timed out after {o.AnchorTimeout}");
                return (null, null);
            }
            var err = stderr.Result;
            if (process.ExitCode != 0)
            {
                var tail = string.Join('\n', err.Split('\n').Where(l => !l.Contains("reduce_range")).TakeLast(6)).Trim();
                notes.Add($"PyTorch anchor failed (exit {process.ExitCode}): {tail}");
                return (null, null);
            }
            var line = stdout.Result.Split('\n', StringSplitOptions.RemoveEmptyEntries).LastOrDefault();
            JsonObject? report;
            try { report = line is null ? null : JsonNode.Parse(line) as JsonObject; }
            catch (JsonException) { report = null; }
            if (report is null) { notes.Add($"PyTorch anchor printed no JSON report: {line}"); return (null, null); }
            report.Remove("output");
            var outputs = SafetensorsFile.ReadHeader(outputPath).ReadAll();
            log($"PyTorch anchor: {report.ToJsonString()}");
            return (report, outputs);
        }
    }

    private static (Dictionary<string, double?> Ms, Dictionary<string, double?> Psnr) RunFullRender(IFullRenderBenchmark render, bool bf16, CancellationToken ct)
    {
        var (reference, fp32Ms) = render.Render(QuantizationMode.None, ct);
        var ms = new Dictionary<string, double?> { [ModelBenchmarkResult.Fp32] = Math.Round(fp32Ms, 1) };
        var psnr = new Dictionary<string, double?> { [ModelBenchmarkResult.Int8Dynamic] = null, [ModelBenchmarkResult.Bf16] = null };
        var (int8Image, int8Ms) = render.Render(QuantizationMode.Int8Dynamic, ct);
        ms[ModelBenchmarkResult.Int8Dynamic] = Math.Round(int8Ms, 1);
        psnr[ModelBenchmarkResult.Int8Dynamic] = Round(Fidelity.PsnrDb(int8Image, reference));
        if (bf16)
        {
            var (bf16Image, bf16Ms) = render.Render(QuantizationMode.BFloat16, ct);
            ms[ModelBenchmarkResult.Bf16] = Math.Round(bf16Ms, 1);
            psnr[ModelBenchmarkResult.Bf16] = Round(Fidelity.PsnrDb(bf16Image, reference));
        }
        return (ms, psnr);
    }

    private static double? MinSample(JsonObject? anchor, string key) =>
        anchor?["samplesMs"]?[key] is JsonArray samples && samples.Count > 0 ? samples.Min(s => s!.GetValue<double>()) : null;

    private static double? Ratio(double? slower, double? faster) =>
        slower is { } s && faster is { } f && f > 0 ? Math.Round(s / f, 3) : null;

    private static double? Round(double v) => double.IsFinite(v) ? Math.Round(v, 2) : null;

    /// <summary>The transformer's inputs, with the names the anchor script reads.</summary>
    private sealed record Inputs(Tensor X, Tensor Timestep, Tensor Bert, Tensor BertMask, Tensor T5, Tensor T5Mask,
                                 (Tensor Cos, Tensor Sin) Rope, Tensor? ImageMetaSize, Tensor? Style, long Tokens)
    {
        public static Inputs Random(HunyuanDiTConfig c, int batch, int height, int width, int vaeScaleFactor, long seed)
        {
            int f = vaeScaleFactor * c.PatchSize;
            if (height % f != 0 || width % f != 0) throw new ArgumentException($"{width}x{height}: sizes must be multiples of {f} px");
            var g = new Generator((ulong)seed + 1);
            long hl = height / vaeScaleFactor, wl = width / vaeScaleFactor;
            var bertLengths = torch.randint(4, c.TextLen, [batch, 1], generator: g);
            var t5Lengths = torch.randint(4, c.TextLenT5, [batch, 1], generator: g);
            Tensor? meta = null, style = null;
            if (c.UseStyleCondAndImageMetaSize)
            {
                meta = torch.tensor(new float[] { height, width, height, width, 0, 0 }).repeat(batch, 1);
                style = torch.zeros(batch, ScalarType.Int64);
            }
            return new Inputs(
                torch.randn([batch, c.InChannels, hl, wl], generator: g),
                torch.randint(1, 1000, [batch], generator: g).to(ScalarType.Float32),
                torch.randn([batch, c.TextLen, c.CrossAttentionDim], generator: g),
                (torch.arange(c.TextLen).unsqueeze(0) < bertLengths).to(ScalarType.Int64),
                torch.randn([batch, c.TextLenT5, c.CrossAttentionDimT5], generator: g),
                (torch.arange(c.TextLenT5).unsqueeze(0) < t5Lengths).to(ScalarType.Int64),
                HunyuanDiT2DModel.RotaryTables(height, width, c.AttentionHeadDim, c.PatchSize, vaeScaleFactor),
                meta, style, hl / c.PatchSize * (wl / c.PatchSize));
        }

        public Inputs To(Device d) => this with
        {
            X = X.to(d), Timestep = Timestep.to(d), Bert = Bert.to(d), BertMask = BertMask.to(d), T5 = T5.to(d), T5Mask = T5Mask.to(d),
            Rope = (Rope.Cos.to(d), Rope.Sin.to(d)), ImageMetaSize = ImageMetaSize?.to(d), Style = Style?.to(d),
        };

        public void Save(string path)
        {
            var tensors = new List<KeyValuePair<string, Tensor>>
            {
                new("hidden_states", X), new("timestep", Timestep), new("encoder_hidden_states", Bert), new("text_embedding_mask", BertMask),
                new("encoder_hidden_states_t5", T5), new("text_embedding_mask_t5", T5Mask),
            };
            if (ImageMetaSize is not null) tensors.Add(new("image_meta_size", ImageMetaSize));
            if (Style is not null) tensors.Add(new("style", Style));
            SafetensorsFile.Write(path, tensors);
        }
    }
}
