using System.Diagnostics;
using System.Security.Cryptography;
using System.Text.Json;
using BatchRender.Model.Autoencoders;
using BatchRender.Model.Loading;
using BatchRender.Model.Pipelines;
using BatchRender.Model.Quantization;
using BatchRender.Model.Schedulers;
using BatchRender.Model.TextEncoders;
using BatchRender.Model.Tokenizers;
using BatchRender.Model.Transformers;
using BatchRender.Training.Dataset;
using BatchRender.Training.Tokenizers;
using TorchSharp;
using static TorchSharp.torch;

namespace BatchRender.Training.Training;

/// <summary>
/// Trains the bilingual demo model (<c>batchrender train</c>): (a) the two tokenizers from the demo corpus, (b) the
/// AutoencoderKL on dataset images (or one trained before, <see cref="DemoTrainingOptions.VaeFrom"/>), then the latent
/// cache and the VAE scaling factor, (b3) BERT and T5 on the scene-attribute loss alone, (c) BERT, T5 and the DiT jointly
/// on the cached latents, (d) the diffusers model directory (EMA weights) and training_report.json.
/// Checkpoints, the cache and the tokenizers live in the work folder; the output folder only changes at the very end,
/// component by component, so a failed or cancelled run never leaves a half-written model (other files there, such
/// as the model card, are kept).
/// </summary>
public static class DemoTrainer
{
    public const string ReportFileName = "training_report.json";
    private static readonly JsonSerializerOptions Indented = new() { WriteIndented = true };

    /// <summary>The scheduler the model is trained for and ships with (HUNYUAN.md 4.6, v-prediction). beta_end 0.03
    /// (v1.0/1.1's) rather than v1.2's 0.018: 16 x 16 latents keep more of the image at a given noise level than
    /// 128 x 128 ones, so the terminal step needs more noise to match the pure-noise start of sampling.</summary>
    public static SchedulerConfig Scheduler { get; } = SchedulerConfig.Parse("""
        { "_class_name": "DDPMScheduler", "num_train_timesteps": 1000, "beta_start": 0.00085, "beta_end": 0.03,
          "beta_schedule": "scaled_linear", "prediction_type": "v_prediction", "variance_type": "fixed_small",
          "clip_sample": false, "clip_sample_range": 1.0, "thresholding": false, "dynamic_thresholding_ratio": 0.995,
          "sample_max_value": 1.0, "set_alpha_to_one": false, "steps_offset": 1, "timestep_spacing": "leading",
          "rescale_betas_zero_snr": false }
        """);

    public static Task<TrainingReport> RunAsync(DemoTrainingOptions options, IProgress<TrainingProgress>? progress, CancellationToken cancellationToken) =>
        Task.Factory.StartNew(() => Run(options.Validated(), progress, cancellationToken), cancellationToken,
                              TaskCreationOptions.LongRunning, TaskScheduler.Default);

    private static TrainingReport Run(DemoTrainingOptions o, IProgress<TrainingProgress>? progress, CancellationToken ct)
    {
        var total = Stopwatch.StartNew();
        int threads = o.Threads > 0 ? o.Threads : Environment.ProcessorCount;
        torch.set_num_threads(threads);
        // TorchSharp has no autocast; bf16 matmuls are ~100x slower than fp32 without native bf16 (AVX2), so fp32 it is.
        string precision = CpuFeatures.HasNativeBFloat16 ? "fp32 (native bf16 present; TorchSharp has no autocast, so fp32)"
                                                         : "fp32 (no native bf16 on this CPU: bf16 matmuls would be slower than fp32)";
        Say(progress, "setup", $"{threads} threads, {precision}, seed {o.Seed}, {o.ImageSize} px");

        var work = Path.GetFullPath(o.WorkDirectory);
        if (!o.Resume && Directory.Exists(work))
            foreach (var entry in new[] { "tokenizers", "vae", "diffusion", "latents.bin", "output" })
                Delete(Path.Combine(work, entry));
        Directory.CreateDirectory(work);
        var dataset = new DemoDataset(new DemoDatasetOptions { Seed = o.Seed, ImageSize = o.ImageSize });

        // (a) Tokenizers.
        var clock = Stopwatch.StartNew();
        var tokenizerDirectory = Path.Combine(work, "tokenizers");
        var t = o.Sizes.Transformer;
        DemoTokenizers tokenizers;
        if (o.Resume && File.Exists(Path.Combine(tokenizerDirectory, "tokenizer", "vocab.txt")) && File.Exists(Path.Combine(tokenizerDirectory, "tokenizer_2", "spiece.model")))
            tokenizers = new DemoTokenizers(Path.Combine(tokenizerDirectory, "tokenizer"), File.ReadAllLines(Path.Combine(tokenizerDirectory, "tokenizer", "vocab.txt")).Length,
                                            Path.Combine(tokenizerDirectory, "tokenizer_2"), SentencePieceModelInfo.PieceCount(File.ReadAllBytes(Path.Combine(tokenizerDirectory, "tokenizer_2", "spiece.model"))));
        else
            tokenizers = DemoTokenizerBuilder.Build(tokenizerDirectory, new DemoTokenizerOptions
            {
                Seed = o.Seed, CorpusCaptions = o.TokenizerCorpusCaptions, BertMaxLength = t.TextLen, T5MaxLength = t.TextLenT5,
            }, ct);
        double tokenizerSeconds = clock.Elapsed.TotalSeconds;
        Say(progress, "tokenizers", $"BERT vocabulary {tokenizers.BertVocabSize}, SentencePiece pieces {tokenizers.T5VocabSize}");

        // (b) VAE.
        var vaeConfig = o.Sizes.Vae with { ScalingFactor = 1.0, SampleSize = o.ImageSize };
        manual_seed(SeedMixer.Mix(o.Seed, 0, 1));
        using var vae = new AutoencoderKL(vaeConfig);
        using var vaeEma = new AutoencoderKL(vaeConfig);
        var stages = new List<StageReport>();
        string vaeWeights;
        if (o.VaeFrom is { } vaeFrom)
        {
            // A VAE trained before (its weights as shipped): the latent cache and everything after it are built on it.
            var vaeDirectory = Path.Combine(Path.GetFullPath(vaeFrom), "vae");
            DiffusersComponent.LoadStateDict(vaeEma, vaeDirectory);
            vaeWeights = DiffusersComponent.FindWeightFiles(vaeDirectory)[0];
            Say(progress, "vae", $"taken from {vaeDirectory} (not trained in this run)");
        }
        else
        {
            var vaeLoop = new StageLoop("vae", [(vae, vaeEma)], o.Vae, o.Seed, Path.Combine(work, "vae"), progress);
            if (!(o.Resume && vaeLoop.TryLoadCompleted(out var vaeReport)))
                vaeReport = vaeLoop.Run(AutoencoderStage.Loss(vae, dataset, o.Vae.BatchSize, o.VaeCropSize ?? o.ImageSize, o.Seed, o.VaeObjectWeight), o.Resume, ct);
            stages.Add(vaeReport!);
            vaeWeights = Path.Combine(work, "vae", "ema-0.dat");
        }
        var (psnr, objectPsnr) = AutoencoderStage.ReconstructionPsnr(vaeEma, dataset, 32);
        Say(progress, "vae", $"reconstruction PSNR {psnr:F2} dB, {objectPsnr:F2} dB on the objects (EMA weights, 32 unseen images)");

        // (b2) Latent cache and scaling factor.
        clock.Restart();
        var cachePath = Path.Combine(work, "latents.bin");
        var fingerprint = $"{o.Seed}:{o.ImageSize}:{o.LatentCacheSize}:" + Convert.ToHexString(SHA256.HashData(File.ReadAllBytes(vaeWeights)));
        var cache = (o.Resume ? LatentCache.TryLoad(cachePath, fingerprint) : null) ?? BuildCache();
        LatentCache BuildCache()
        {
            var built = LatentCache.Build(vaeEma, dataset, o.LatentCacheSize, progress, ct);
            built.Save(cachePath, fingerprint);
            return built;
        }
        double latentSeconds = clock.Elapsed.TotalSeconds;
        double scaling = cache.ScalingFactor();
        Say(progress, "latents", $"{cache.Count} latents in {latentSeconds:F0} s; scaling_factor = 1/std = {scaling:F4}");

        // (c) Text encoders + DiT, jointly.
        var bertConfig = o.Sizes.Bert with { VocabSize = tokenizers.BertVocabSize, PadTokenId = 0 };
        var t5Config = o.Sizes.T5 with { VocabSize = tokenizers.T5VocabSize, PadTokenId = 0, EosTokenId = 1 };
        manual_seed(SeedMixer.Mix(o.Seed, 0, 2));
        using var transformer = new HunyuanDiT2DModel(t);
        using var bert = new BertModel(bertConfig);
        using var t5 = new T5EncoderModel(t5Config);
        using var transformerEma = new HunyuanDiT2DModel(t);
        using var bertEma = new BertModel(bertConfig);
        using var t5Ema = new T5EncoderModel(t5Config);
        var bertTokenizer = BertTextTokenizer.FromDirectory(tokenizers.BertDirectory, t.TextLen);
        var t5Tokenizer = MT5TextTokenizer.FromDirectory(tokenizers.T5Directory, t.TextLenT5);
        using var heads = new SceneAttributeHeads(bertConfig.HiddenSize, t5Config.DModel);
        using var headsEma = new SceneAttributeHeads(bertConfig.HiddenSize, t5Config.DModel);
        if (o.TextWarmup is { } warmup)
        {
            // (b3) The text encoders learn to state the scene before the DiT reads them; the joint stage starts from
            // their EMA weights (a resumed joint stage loads its own checkpoint instead).
            var textLoop = new StageLoop("text", [(bert, bertEma), (t5, t5Ema), (heads, headsEma)], warmup, o.Seed, Path.Combine(work, "text"), progress);
            if (!(o.Resume && textLoop.TryLoadCompleted(out var textReport)))
                textReport = textLoop.Run(TextEncoderWarmup.Loss(bert, t5, bertTokenizer, t5Tokenizer, heads, dataset, warmup.BatchSize, o.Seed), o.Resume, ct);
            stages.Add(textReport!);
            bert.load_state_dict(bertEma.state_dict());
            t5.load_state_dict(t5Ema.state_dict());
            heads.load_state_dict(headsEma.state_dict());
        }
        // The latent-cell head exists (and is checkpointed) only when it is on, so a run with it off resumes checkpoints
        // written before it existed.
        bool cellHeadOn = o.CellLossWeight > 0;
        using var cellHead = cellHeadOn ? new LatentCellAttributeHead(t.HiddenSize, t.PatchSize) : null;
        using var cellHeadEma = cellHeadOn ? new LatentCellAttributeHead(t.HiddenSize, t.PatchSize) : null;
        List<(nn.Module, nn.Module)> diffusionModules = [(transformer, transformerEma), (bert, bertEma), (t5, t5Ema), (heads, headsEma)];
        if (cellHeadOn) diffusionModules.Add((cellHead!, cellHeadEma!));
        var diffusionLoop = new StageLoop("diffusion", diffusionModules, o.Diffusion, o.Seed, Path.Combine(work, "diffusion"), progress);
        var stage = new DiffusionStage(transformer, bert, t5, bertTokenizer, t5Tokenizer, cache, scaling, dataset, Scheduler, o.ImageSize, vae.ScaleFactor,
                                       o.AttributeLossWeight > 0 ? heads : null, o.AttributeLossWeight, o.DiffusionObjectWeight,
                                       cellHead, o.CellLossWeight);
        if (!(o.Resume && diffusionLoop.TryLoadCompleted(out var diffusionReport)))
            diffusionReport = diffusionLoop.Run(stage.Loss(o.Diffusion.BatchSize, o.Seed), o.Resume, ct,
                                                () => $"attribute loss {stage.LastAttributeLoss:F3}; cell loss {stage.LastCellLoss:F3}; {stage.ProbeTextConditioning()}");
        stages.Add(diffusionReport!);
        var textConditioning = stage.ProbeTextConditioning((transformerEma, bertEma, t5Ema));
        Say(progress, "diffusion", $"EMA weights: {textConditioning}");

        // (d) The model directory: EMA weights, the VAE with its scaling factor, the scheduler, the tokenizers.
        ct.ThrowIfCancellationRequested();
        using var finalVae = new AutoencoderKL(vaeConfig with { ScalingFactor = scaling });
        finalVae.load_state_dict(vaeEma.state_dict());
        var staging = Path.Combine(work, "output");
        Delete(staging);
        ModelDirectoryWriter.Save(staging, transformerEma, finalVae, bertEma, t5Ema, Scheduler, tokenizers.BertDirectory, tokenizers.T5Directory,
                                  o.HalfPrecisionWeights ? ScalarType.Float16 : ScalarType.Float32);
        long modelBytes = Directory.EnumerateFiles(staging, "*", SearchOption.AllDirectories).Sum(f => new FileInfo(f).Length);
        var report = new TrainingReport
        {
            Seed = o.Seed, Threads = threads, Precision = precision, ImageSize = o.ImageSize, Stages = stages, VaeFrom = o.VaeFrom, AttributeLossWeight = o.AttributeLossWeight, CellLossWeight = o.CellLossWeight, DiffusionObjectWeight = o.DiffusionObjectWeight,
            VaePsnrDb = psnr, VaeObjectPsnrDb = objectPsnr,
            VaeScalingFactor = scaling, TextConditioning = textConditioning, LatentCacheSize = cache.Count, LatentSeconds = latentSeconds, TokenizerSeconds = tokenizerSeconds,
            TotalSeconds = total.Elapsed.TotalSeconds, ModelBytes = modelBytes,
            Parameters = new Dictionary<string, long>
            {
                ["transformer"] = Count(transformerEma), ["vae"] = Count(finalVae), ["text_encoder"] = Count(bertEma), ["text_encoder_2"] = Count(t5Ema),
            },
        };
        File.WriteAllText(Path.Combine(staging, ReportFileName), JsonSerializer.Serialize(report, Indented));
        Publish(staging, Path.GetFullPath(o.OutputDirectory));
        Say(progress, "write", $"model written to {o.OutputDirectory} ({modelBytes / 1e6:F1} MB) in {total.Elapsed.TotalMinutes:F1} min");
        return report;
    }

    /// <summary>Moves every entry of the staged model into the output folder, replacing entries of the same name only.</summary>
    private static void Publish(string staging, string output)
    {
        Directory.CreateDirectory(output);
        foreach (var entry in Directory.EnumerateFileSystemEntries(staging))
        {
            var target = Path.Combine(output, Path.GetFileName(entry));
            Delete(target);
            if (Directory.Exists(entry)) Directory.Move(entry, target);
            else File.Move(entry, target);
        }
        Directory.Delete(staging, recursive: true);
    }

    private static long Count(nn.Module module) => module.parameters().Sum(p => p.numel());

    private static void Delete(string path)
    {
        if (Directory.Exists(path)) Directory.Delete(path, recursive: true);
        else if (File.Exists(path)) File.Delete(path);
    }

    private static void Say(IProgress<TrainingProgress>? progress, string stage, string message) =>
        progress?.Report(new TrainingProgress(stage, 0, 0, null, 0, TimeSpan.Zero, null, message));
}
