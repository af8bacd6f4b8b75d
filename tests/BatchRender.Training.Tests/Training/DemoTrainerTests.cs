using System.Text.Json;
using System.Text.Json.Nodes;
using BatchRender.Model.Pipelines;
using BatchRender.Model.Tokenizers;
using BatchRender.Training.Dataset;
using BatchRender.Training.Training;
using SixLabors.ImageSharp;
using SixLabors.ImageSharp.PixelFormats;

namespace BatchRender.Training.Tests.Training;

/// <summary>One smoke run of the whole trainer (tokenizers, VAE, latent cache, text encoders + DiT, model directory),
/// shared by the tests that inspect its output.</summary>
public sealed class SmokeTraining : IDisposable
{
    public SmokeTraining()
    {
        Root = Directory.CreateTempSubdirectory("demo-trainer-").FullName;
        OutputDirectory = Path.Combine(Root, "model");
        File.WriteAllText(Path.Combine(Directory.CreateDirectory(OutputDirectory).FullName, "README.md"), "model card");
        Options = DemoTrainingOptions.Smoke(OutputDirectory, Path.Combine(Root, "work")) with { Threads = 2, HalfPrecisionWeights = true };
        Report = DemoTrainer.RunAsync(Options, new Progress(Reports), CancellationToken.None).GetAwaiter().GetResult();
    }

    public string Root { get; }
    public string OutputDirectory { get; }
    public DemoTrainingOptions Options { get; }
    public TrainingReport Report { get; }
    public List<TrainingProgress> Reports { get; } = [];
    public void Dispose() => Directory.Delete(Root, recursive: true);

    /// <summary>Synchronous, unlike System.Progress (which posts to the thread pool).</summary>
    public sealed class Progress(List<TrainingProgress> sink, Action<TrainingProgress>? also = null) : IProgress<TrainingProgress>
    {
        public void Report(TrainingProgress value)
        {
            lock (sink) sink.Add(value);
            also?.Invoke(value);
        }
    }
}

/// <summary>
/// Weight initialisation draws from libtorch's process-wide generator (TorchSharp's module constructors take no
/// generator), so these runs must not overlap other tests that build models: the collection runs alone.
/// </summary>
[CollectionDefinition(nameof(TrainerRuns), DisableParallelization = true)]
public sealed class TrainerRuns;

[Collection(nameof(TrainerRuns))]
public class DemoTrainerTests(SmokeTraining smoke) : IClassFixture<SmokeTraining>
{
    [Fact]
    public void Writes_the_diffusers_layout_beside_the_model_card_and_no_work_files()
    {
        string[] expected =
        [
            "model_index.json", "README.md", DemoTrainer.ReportFileName,
            "transformer/config.json", "transformer/diffusion_pytorch_model.safetensors",
            "vae/config.json", "vae/diffusion_pytorch_model.safetensors",
            "text_encoder/config.json", "text_encoder/model.safetensors",
            "text_encoder_2/config.json", "text_encoder_2/model.safetensors",
            "scheduler/scheduler_config.json",
            "tokenizer/vocab.txt", "tokenizer/tokenizer_config.json", "tokenizer_2/spiece.model", "tokenizer_2/tokenizer_config.json",
        ];
        foreach (var file in expected) Assert.True(File.Exists(Path.Combine(smoke.OutputDirectory, file)), file);
        Assert.Equal("model card", File.ReadAllText(Path.Combine(smoke.OutputDirectory, "README.md")));
        Assert.Empty(Directory.EnumerateFiles(smoke.OutputDirectory, "*.dat", SearchOption.AllDirectories));
        Assert.False(Directory.Exists(Path.Combine(smoke.Options.WorkDirectory, "output")));
        Assert.True(File.Exists(Path.Combine(smoke.Options.WorkDirectory, "diffusion", "state.json")));
    }

    [Fact]
    public void Configs_describe_the_trained_model()
    {
        JsonNode Read(string file) => JsonNode.Parse(File.ReadAllText(Path.Combine(smoke.OutputDirectory, file)))!;
        var transformer = Read("transformer/config.json");
        Assert.True(transformer["frame_phase_embedding"]!.GetValue<bool>());
        Assert.True(transformer["frame_phase_token"]!.GetValue<bool>());
        Assert.Equal(smoke.Options.Sizes.Transformer.TextLen, transformer["text_len"]!.GetValue<int>());
        Assert.Equal(smoke.Options.Sizes.Transformer.TextLenT5, transformer["text_len_t5"]!.GetValue<int>());
        var scheduler = Read("scheduler/scheduler_config.json");
        Assert.Equal("v_prediction", scheduler["prediction_type"]!.GetValue<string>());
        Assert.Equal("scaled_linear", scheduler["beta_schedule"]!.GetValue<string>());
        var vae = Read("vae/config.json");
        Assert.Equal(smoke.Report.VaeScalingFactor, vae["scaling_factor"]!.GetValue<double>(), 6);
        Assert.NotEqual(1.0, smoke.Report.VaeScalingFactor);
        Assert.Equal(File.ReadAllLines(Path.Combine(smoke.OutputDirectory, "tokenizer/vocab.txt")).Length, Read("text_encoder/config.json")["vocab_size"]!.GetValue<int>());
        Assert.Equal(smoke.Options.Sizes.Transformer.TextLen, Read("tokenizer/tokenizer_config.json")["model_max_length"]!.GetValue<int>());
        // fp16 weights on disk (the shipped size), fp32 in memory after loading.
        Assert.Contains("\"F16\"", HeaderOf("transformer/diffusion_pytorch_model.safetensors"));
    }

    private string HeaderOf(string file)
    {
        using var stream = File.OpenRead(Path.Combine(smoke.OutputDirectory, file));
        var length = new byte[8];
        stream.ReadExactly(length);
        var header = new byte[BitConverter.ToInt64(length)];
        stream.ReadExactly(header);
        return System.Text.Encoding.UTF8.GetString(header);
    }

    [Fact]
    public void Report_records_every_stage_and_progress_carries_loss_and_eta()
    {
        var report = JsonSerializer.Deserialize<TrainingReport>(File.ReadAllText(Path.Combine(smoke.OutputDirectory, DemoTrainer.ReportFileName)))!;
        Assert.Equal(["vae", "text", "diffusion"], report.Stages.Select(s => s.Stage));
        Assert.Equal([4, 2, 4], report.Stages.Select(s => s.Steps));
        Assert.Null(report.VaeFrom);
        Assert.Equal((smoke.Options.AttributeLossWeight, smoke.Options.CellLossWeight), (report.AttributeLossWeight, report.CellLossWeight));
        Assert.True(report.CellLossWeight > 0);
        Assert.Equal(smoke.Options.DiffusionObjectWeight, report.DiffusionObjectWeight);
        Assert.All(report.Stages, s => Assert.True(double.IsFinite(s.FinalLoss) && s.FinalLoss > 0));
        Assert.True(double.IsFinite(report.VaePsnrDb));
        Assert.All(report.Parameters.Values, p => Assert.True(p > 0));
        Assert.StartsWith("fp32", report.Precision);
        Assert.True(report.TextConditioning.OwnCaptionLoss > 0 && double.IsFinite(report.TextConditioning.Ratio), report.TextConditioning.ToString());
        lock (smoke.Reports)
        {
            var steps = smoke.Reports.Where(r => r.Stage == "diffusion" && r.Loss is not null).ToList();
            Assert.Equal([1, 2, 3, 4], steps.Select(r => r.Step));
            Assert.All(steps, r => Assert.Equal(4, r.TotalSteps));
            Assert.Equal(TimeSpan.Zero, steps[^1].Eta);
            Assert.Contains(smoke.Reports, r => r.Message?.Contains("bf16") == true);
            Assert.Contains(smoke.Reports, r => r.Stage == "diffusion" && r.Message?.StartsWith("checkpoint at step 4; attribute loss") == true
                                                && r.Message.Contains("probe v-loss"));
            // The latent-cell head trains with the joint stage: its loss is a finite number at every checkpoint.
            var checkpoints = smoke.Reports.Where(r => r.Stage == "diffusion" && r.Message?.StartsWith("checkpoint at step") == true).ToList();
            Assert.NotEmpty(checkpoints);
            Assert.All(checkpoints, r => Assert.Matches(@"cell loss \d+\.\d{3};", r.Message));
            Assert.Contains(smoke.Reports, r => r.Stage == "latents" && r.Step == smoke.Options.LatentCacheSize);
        }
    }

    [Fact]
    public void The_pipeline_loads_the_model_and_renders_english_chinese_and_a_frame_phase_video()
    {
        using var pipeline = HunyuanDiTPipeline.Load(new PipelineLoadOptions { ModelDirectory = smoke.OutputDirectory, Device = "cpu" });
        RenderRequest Request(string prompt) => new()
        {
            Prompt = prompt, NegativePrompt = "blurry, low quality", Seed = 3, Width = 64, Height = 64, Steps = 2, GuidanceScale = 4,
        };
        var results = pipeline.Render(
        [
            Request("a large red star in the top left corner on a blue background"),
            Request("蓝色背景左上角有一个大的红色五角星"),
            Request("a red circle moving from left to right") with { Video = new VideoRequest(Frames: 3, Fps: 4, MotionScale: 1) },
        ]);
        Assert.Equal(3, results.Count);
        foreach (var r in results)
        {
            using var image = Image.Load<Rgb24>(r.Png);
            Assert.Equal((64, 64), (image.Width, image.Height));
        }
        Assert.NotEqual(results[0].Png, results[1].Png);
        Assert.Equal(3, results[2].FramePngs!.Count);
        Assert.NotEqual(results[2].FramePngs![0], results[2].FramePngs![2]);   // the frame phase changes the frames
    }

    [Fact]
    public void A_cancelled_run_resumes_from_its_checkpoint_and_ends_with_identical_weights()
    {
        var work = Path.Combine(smoke.Root, "resume-work");
        var output = Path.Combine(smoke.Root, "resume-model");
        var options = smoke.Options with { OutputDirectory = output, WorkDirectory = work };
        using var cancel = new CancellationTokenSource();
        var first = new List<TrainingProgress>();
        var progress = new SmokeTraining.Progress(first, p => { if (p.Stage == "diffusion" && p.Message?.Contains("checkpoint at step 2") == true) cancel.Cancel(); });
        Assert.ThrowsAny<OperationCanceledException>(() => DemoTrainer.RunAsync(options, progress, cancel.Token).GetAwaiter().GetResult());
        Assert.False(Directory.Exists(Path.Combine(output, "transformer")));   // nothing half-written

        var second = new List<TrainingProgress>();
        var report = DemoTrainer.RunAsync(options with { Resume = true }, new SmokeTraining.Progress(second), CancellationToken.None).GetAwaiter().GetResult();
        Assert.Contains(second, p => p.Message == "resuming diffusion at step 2 of 4");
        Assert.DoesNotContain(second, p => p.Stage == "vae" && p.Loss is not null);              // the finished VAE stage is not re-run
        Assert.Equal([3, 4], second.Where(p => p.Stage == "diffusion" && p.Loss is not null).Select(p => p.Step));
        Assert.True(report.Stages.Single(s => s.Stage == "diffusion").Resumed);
        Assert.DoesNotContain(second, p => p.Stage == "text" && p.Loss is not null);             // nor the finished text warm-up
        foreach (var file in new[] { "transformer/diffusion_pytorch_model.safetensors", "text_encoder/model.safetensors",
                                     "text_encoder_2/model.safetensors", "vae/diffusion_pytorch_model.safetensors" })
            Assert.Equal(File.ReadAllBytes(Path.Combine(smoke.OutputDirectory, file)), File.ReadAllBytes(Path.Combine(output, file)));

        // A finished stage given a larger step budget goes on from its end (a warm restart), the VAE still not re-run.
        var third = new List<TrainingProgress>();
        var longer = options with { Resume = true, Diffusion = options.Diffusion with { Steps = 6 } };
        var extended = DemoTrainer.RunAsync(longer, new SmokeTraining.Progress(third), CancellationToken.None).GetAwaiter().GetResult();
        Assert.Contains(third, p => p.Message == "extending diffusion from step 4 to 6");
        Assert.DoesNotContain(third, p => p.Stage == "vae" && p.Loss is not null);
        Assert.Equal([5, 6], third.Where(p => p.Stage == "diffusion" && p.Loss is not null).Select(p => p.Step));
        Assert.Equal(6, extended.Stages.Single(s => s.Stage == "diffusion").Steps);
        Assert.NotEqual(File.ReadAllBytes(Path.Combine(smoke.OutputDirectory, "transformer/diffusion_pytorch_model.safetensors")),
                        File.ReadAllBytes(Path.Combine(output, "transformer/diffusion_pytorch_model.safetensors")));
    }

    [Fact]
    public void A_run_can_take_the_vae_of_a_trained_model_instead_of_training_one()
    {
        var output = Path.Combine(smoke.Root, "vae-from-model");
        var options = smoke.Options with { OutputDirectory = output, WorkDirectory = Path.Combine(smoke.Root, "vae-from-work"), VaeFrom = smoke.OutputDirectory, TextWarmup = null };
        var reports = new List<TrainingProgress>();
        var report = DemoTrainer.RunAsync(options, new SmokeTraining.Progress(reports), CancellationToken.None).GetAwaiter().GetResult();
        Assert.Equal(["diffusion"], report.Stages.Select(s => s.Stage));           // no VAE trained, no text warm-up
        Assert.DoesNotContain(reports, p => p.Stage == "vae" && p.Loss is not null);
        Assert.Contains(reports, p => p.Stage == "vae" && p.Message?.StartsWith("taken from ") == true);
        Assert.Equal(smoke.OutputDirectory, report.VaeFrom);
        Assert.Equal(smoke.Report.VaePsnrDb, report.VaePsnrDb, 1);                  // the same autoencoder, up to its fp16 copy
        Assert.Equal(File.ReadAllBytes(Path.Combine(smoke.OutputDirectory, "vae/diffusion_pytorch_model.safetensors")),
                     File.ReadAllBytes(Path.Combine(output, "vae/diffusion_pytorch_model.safetensors")));

        var notAModel = smoke.Options with { VaeFrom = Path.Combine(smoke.Root, "nowhere") };
        Assert.Contains("VaeFrom", Assert.ThrowsAny<ArgumentException>(() => notAModel.Validated()).Message);
        // A VAE of other sizes is refused before anything is built, naming both.
        var otherSizes = smoke.Options with { VaeFrom = smoke.OutputDirectory, Sizes = smoke.Options.Sizes with
        {
            Vae = smoke.Options.Sizes.Vae with { LatentChannels = 8 }, Transformer = smoke.Options.Sizes.Transformer with { InChannels = 8 },
        } };
        var e = Assert.ThrowsAny<ArgumentException>(() => otherSizes.Validated());
        Assert.Contains("VaeFrom", e.Message);
        Assert.Contains("latent_channels 4", e.Message);
        Assert.Contains("latent_channels 8", e.Message);
    }

    [Fact]
    public void The_default_options_and_sizes_are_valid()
    {
        var options = new DemoTrainingOptions().Validated();
        Assert.Equal(options.Sizes.Vae.LatentChannels, options.Sizes.Transformer.InChannels);
        options.Sizes.Transformer.Validate();
    }

    [Fact]
    public void Text_lengths_hold_the_longest_training_captions_untruncated()
    {
        var bert = BertTextTokenizer.FromDirectory(Path.Combine(smoke.OutputDirectory, "tokenizer"), maxLength: 512);
        var t5 = MT5TextTokenizer.FromDirectory(Path.Combine(smoke.OutputDirectory, "tokenizer_2"), maxLength: 512);
        var dataset = new DemoDataset(new DemoDatasetOptions { Seed = smoke.Options.Seed });
        var captions = Enumerable.Range(0, 3000).Select(i => dataset.GetExample(i).Caption).ToList();
        int longestBert = captions.Max(c => bert.Encode(c).Length), longestT5 = captions.Max(c => t5.Encode(c).Length);
        Assert.True(longestBert <= DemoModelSizes.Demo.Transformer.TextLen && longestT5 <= DemoModelSizes.Demo.Transformer.TextLenT5, $"longest captions: BERT {longestBert} tokens, T5 {longestT5} tokens");
    }

    [Fact]
    public void Invalid_options_name_the_field()
    {
        var bad = smoke.Options with { Diffusion = smoke.Options.Diffusion with { BatchSize = 0 } };
        Assert.Contains("Diffusion.BatchSize", Assert.ThrowsAny<ArgumentException>(() => bad.Validated()).Message);
        var mismatch = smoke.Options with { Sizes = smoke.Options.Sizes with { Bert = smoke.Options.Sizes.Bert with { HiddenSize = 64 } } };
        Assert.Contains("cross_attention_dim", Assert.ThrowsAny<ArgumentException>(() => mismatch.Validated()).Message);
    }
}
