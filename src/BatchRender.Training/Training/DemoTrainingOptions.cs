using BatchRender.Model.Autoencoders;
using BatchRender.Model.Configuration;
using BatchRender.Model.TextEncoders;

namespace BatchRender.Training.Training;

/// <summary>How long one stage trains, and how. The schedule length is <see cref="Steps"/>; when only
/// <see cref="Minutes"/> is given, the trainer times the first steps and fixes the step count that fits the budget
/// (recorded in the checkpoint, so a resumed run keeps the same learning-rate schedule).</summary>
public sealed record StageBudget
{
    public int? Steps { get; init; }
    public double? Minutes { get; init; }
    public int BatchSize { get; init; } = 16;
    public double LearningRate { get; init; } = 3e-4;
    public double WeightDecay { get; init; } = 0.01;
    /// <summary>Linear warm-up steps (then cosine decay to <see cref="MinLearningRateFraction"/> x the peak).</summary>
    public int WarmupSteps { get; init; } = 200;
    public double MinLearningRateFraction { get; init; } = 0.05;
    public double GradientClipNorm { get; init; } = 1.0;
    public double EmaDecay { get; init; } = 0.999;
    /// <summary>Steps between checkpoints (and at the end of the stage).</summary>
    public int CheckpointEvery { get; init; } = 500;
    /// <summary>A warm restart of the learning-rate schedule at this step (<see cref="LearningRateSchedule"/>): the same
    /// schedule as training <see cref="RestartAt"/> steps and then extending the finished stage to <see cref="Steps"/>
    /// with <c>--resume</c>. Null: one cosine.</summary>
    public int? RestartAt { get; init; }

    public StageBudget Validated(string stage)
    {
        if (Steps is null && Minutes is null) throw new ArgumentException($"{stage}: give steps or minutes");
        if (Steps is <= 0) throw new ArgumentOutOfRangeException($"{stage}.Steps", Steps, "must be positive");
        if (Minutes is <= 0) throw new ArgumentOutOfRangeException($"{stage}.Minutes", Minutes, "must be positive");
        if (BatchSize <= 0) throw new ArgumentOutOfRangeException($"{stage}.BatchSize", BatchSize, "must be positive");
        if (LearningRate <= 0) throw new ArgumentOutOfRangeException($"{stage}.LearningRate", LearningRate, "must be positive");
        if (EmaDecay is < 0 or >= 1) throw new ArgumentOutOfRangeException($"{stage}.EmaDecay", EmaDecay, "must be in [0, 1)");
        if (CheckpointEvery <= 0) throw new ArgumentOutOfRangeException($"{stage}.CheckpointEvery", CheckpointEvery, "must be positive");
        if (RestartAt is { } restart && (Steps is not { } steps || restart <= 0 || restart >= steps))
            throw new ArgumentOutOfRangeException($"{stage}.RestartAt", RestartAt, $"must lie inside a step budget (steps: {Steps?.ToString() ?? "none"})");
        return this;
    }
}

/// <summary>The sizes of the four networks. Text lengths are what the demo captions need (the longest Chinese
/// two-object caption is under 40 BERT tokens); the DiT sees 16 x 16 latents of a 128 x 128 image.</summary>
public sealed record DemoModelSizes
{
    public required AutoencoderKLConfig Vae { get; init; }
    /// <summary>VocabSize is filled in from the built tokenizer.</summary>
    public required BertConfig Bert { get; init; }
    /// <summary>VocabSize is filled in from the built tokenizer.</summary>
    public required T5Config T5 { get; init; }
    /// <summary>CrossAttentionDim / CrossAttentionDimT5 must match the encoders' widths.</summary>
    public required HunyuanDiTConfig Transformer { get; init; }

    /// <summary>The shipped demo model (sized from measured throughput on the 2-core machine; see models/demo/README.md).
    /// The VAE has 8 latent channels where Hunyuan-DiT's has 4: so small a decoder cannot invent detail the latent does
    /// not hold, and with 4 channels per 8 x 8 pixels even the ground truth, round-tripped, kept its shape in 55 % of the
    /// eval scenes and its colour in 80 % (session 8's `eval --vae-ceiling`).</summary>
    public static DemoModelSizes Demo { get; } = new()
    {
        Vae = new AutoencoderKLConfig
        {
            BlockOutChannels = [16, 32, 64, 64], LayersPerBlock = 1, LatentChannels = 8, NormNumGroups = 8, SampleSize = 128, ScalingFactor = 1.0,
        },
        Bert = new BertConfig
        {
            HiddenSize = 128, NumHiddenLayers = 2, NumAttentionHeads = 4, IntermediateSize = 512, MaxPositionEmbeddings = 64, AddPoolingLayer = false,
        },
        T5 = new T5Config { DModel = 128, DKv = 32, DFf = 256, NumLayers = 2, NumHeads = 4, RelativeAttentionMaxDistance = 64 },
        Transformer = new HunyuanDiTConfig
        {
            NumAttentionHeads = 4, AttentionHeadDim = 48, HiddenSize = 192, NumLayers = 6, MlpRatio = 4.0, InChannels = 8, PatchSize = 2,
            SampleSize = 16, LearnSigma = false, CrossAttentionDim = 128, CrossAttentionDimT5 = 128, PooledProjectionDim = 128,
            TextLen = 56, TextLenT5 = 64, UseStyleCondAndImageMetaSize = false, FramePhaseEmbedding = true, FramePhaseToken = true,
        },
    };

    /// <summary>Tiny networks for the smoke run (tests): every code path, seconds per stage.</summary>
    public static DemoModelSizes Smoke { get; } = new()
    {
        Vae = new AutoencoderKLConfig
        {
            BlockOutChannels = [8, 8, 16, 16], LayersPerBlock = 1, LatentChannels = 4, NormNumGroups = 4, SampleSize = 64, ScalingFactor = 1.0,
        },
        Bert = new BertConfig
        {
            HiddenSize = 32, NumHiddenLayers = 1, NumAttentionHeads = 2, IntermediateSize = 64, MaxPositionEmbeddings = 64, AddPoolingLayer = false,
        },
        T5 = new T5Config { DModel = 32, DKv = 16, DFf = 64, NumLayers = 1, NumHeads = 2, RelativeAttentionMaxDistance = 64 },
        Transformer = new HunyuanDiTConfig
        {
            NumAttentionHeads = 2, AttentionHeadDim = 16, HiddenSize = 32, NumLayers = 2, MlpRatio = 2.0, InChannels = 4, PatchSize = 2,
            SampleSize = 8, LearnSigma = false, CrossAttentionDim = 32, CrossAttentionDimT5 = 32, PooledProjectionDim = 32,
            TextLen = 56, TextLenT5 = 64, UseStyleCondAndImageMetaSize = false, FramePhaseEmbedding = true, FramePhaseToken = true,
        },
    };
}

/// <summary>Options of <c>batchrender train</c>.</summary>
public sealed record DemoTrainingOptions
{
    /// <summary>Where the finished model is written (diffusers layout).</summary>
    public string OutputDirectory { get; init; } = "models/demo";
    /// <summary>Checkpoints, the latent cache and the staged tokenizers (git-ignored; never commit it).</summary>
    public string WorkDirectory { get; init; } = ".scratch/train";
    public int Seed { get; init; } = 20261125;
    /// <summary>Torch intra-op threads; 0 = every core.</summary>
    public int Threads { get; init; }
    /// <summary>Continue from the checkpoints in <see cref="WorkDirectory"/> (finished stages are not re-run).</summary>
    public bool Resume { get; init; }
    /// <summary>Training image size (the VAE trains on it, the DiT on its latents).</summary>
    public int ImageSize { get; init; } = 128;
    public DemoModelSizes Sizes { get; init; } = DemoModelSizes.Demo;
    /// <summary>Captions sampled into the tokenizer corpus.</summary>
    public int TokenizerCorpusCaptions { get; init; } = 20000;
    /// <summary>Step budgets (not minutes) so the shipped model is the same on any machine. The VAE: 6,000 steps with a
    /// warm restart at 3,000, 23-25 min on the 2-core AVX-512 machine (64 px crops: 3.3x the images per second of whole
    /// 128 px ones). Its second cosine took the round-tripped eval scenes from 40 to 57 % right shape and from 33 to 55 %
    /// all attributes together (session 9). The joint stage: 0.7-0.95 s per step of 32 when nothing else runs (the
    /// shipped model: 6,000 in one schedule, after the text warm-up).</summary>
    public StageBudget Vae { get; init; } = new() { Steps = 6000, RestartAt = 3000, BatchSize = 8, LearningRate = 1e-3, WarmupSteps = 100, EmaDecay = 0.995 };
    /// <summary>The VAE trains on random crops of this size (null: whole images); see <see cref="AutoencoderStage.Crops"/>.</summary>
    public int? VaeCropSize { get; init; } = 64;
    /// <summary>Extra weight of object pixels in the VAE's reconstruction loss (<see cref="AutoencoderStage"/>).</summary>
    public double VaeObjectWeight { get; init; } = 8;
    /// <summary>A model directory whose <c>vae/</c> is taken as it is instead of training one (stage b is skipped; the
    /// latent cache is built with it). Its config must match <see cref="DemoModelSizes.Vae"/>. Null: train the VAE.</summary>
    public string? VaeFrom { get; init; }
    /// <summary>Scenes encoded once by the trained VAE; the diffusion stage draws from them (captions redrawn each time).</summary>
    public int LatentCacheSize { get; init; } = 16000;
    /// <summary>Stage b3 (<see cref="TextEncoderWarmup"/>): BERT and T5 on the scene-attribute loss alone, captions
    /// only, before the joint stage starts from their EMA weights; null skips it. 9 min for 1,500 steps of 64 on the 2-core
    /// machine (with other work beside it).</summary>
    public StageBudget? TextWarmup { get; init; } = new() { Steps = 1500, BatchSize = 64, LearningRate = 1e-3, WarmupSteps = 100, EmaDecay = 0.99 };
    /// <summary>EMA 0.998 (a ~500-step horizon): at 0.999 a fifth of the saved weights would still come from the first
    /// half of so short a schedule.</summary>
    public StageBudget Diffusion { get; init; } = new() { Steps = 6000, BatchSize = 32, LearningRate = 8e-4, WarmupSteps = 200, EmaDecay = 0.998 };
    /// <summary>Weight of the text encoders' scene-attribute loss (<see cref="SceneAttributeHeads"/>) beside the v-loss;
    /// 0 trains on the diffusion loss alone.</summary>
    public double AttributeLossWeight { get; init; } = 0.1;
    /// <summary>Extra weight of latent cells holding an object in the diffusion loss (<see cref="DiffusionStage"/>),
    /// as <see cref="VaeObjectWeight"/> is in the VAE's; 0 (the shipped model) weighs every cell alike. Session 6 tried
    /// 8 for 5,600 steps: shape, size and style read right more often, but background (48-52 %) and colour (25-28 %)
    /// less, so it stays off (models/demo/README.md).</summary>
    public double DiffusionObjectWeight { get; init; }
    /// <summary>Weight of the DiT's latent-cell attribute loss (<see cref="LatentCellAttributeHead"/>: the colour and shape
    /// under every latent cell, read from the token states at the bottom of the U) beside the v-loss; 0 turns it off.</summary>
    public double CellLossWeight { get; init; } = 0.1;
    /// <summary>Weights dtype of the written model: half precision keeps models/demo under 30 MB (the loader upcasts).</summary>
    public bool HalfPrecisionWeights { get; init; } = true;

    /// <summary>A few steps of every stage at tiny sizes (tests, and a check that a machine can train at all).</summary>
    public static DemoTrainingOptions Smoke(string outputDirectory, string workDirectory) => new()
    {
        OutputDirectory = outputDirectory, WorkDirectory = workDirectory, ImageSize = 64, Sizes = DemoModelSizes.Smoke,
        TokenizerCorpusCaptions = 3000, LatentCacheSize = 24, HalfPrecisionWeights = false, VaeCropSize = 32,
        Vae = new StageBudget { Steps = 4, BatchSize = 2, LearningRate = 1e-3, WarmupSteps = 1, CheckpointEvery = 2, EmaDecay = 0.9 },
        TextWarmup = new StageBudget { Steps = 2, BatchSize = 4, LearningRate = 1e-3, WarmupSteps = 1, CheckpointEvery = 2, EmaDecay = 0.9 },
        Diffusion = new StageBudget { Steps = 4, BatchSize = 4, LearningRate = 1e-3, WarmupSteps = 1, CheckpointEvery = 2, EmaDecay = 0.9 },
    };

    public DemoTrainingOptions Validated()
    {
        if (string.IsNullOrWhiteSpace(OutputDirectory)) throw new ArgumentException("OutputDirectory: required");
        if (string.IsNullOrWhiteSpace(WorkDirectory)) throw new ArgumentException("WorkDirectory: required");
        if (Threads < 0) throw new ArgumentOutOfRangeException(nameof(Threads), Threads, "must not be negative");
        int f = Sizes.Vae.ScaleFactor * Sizes.Transformer.PatchSize;
        if (ImageSize <= 0 || ImageSize % f != 0)
            throw new ArgumentOutOfRangeException(nameof(ImageSize), ImageSize, $"must be a positive multiple of VAE factor x patch size = {f}");
        if (VaeCropSize is { } crop && (crop <= 0 || crop > ImageSize || crop % Sizes.Vae.ScaleFactor != 0))
            throw new ArgumentOutOfRangeException(nameof(VaeCropSize), crop, $"must be a positive multiple of the VAE factor {Sizes.Vae.ScaleFactor}, at most the image size {ImageSize}");
        if (VaeObjectWeight < 0) throw new ArgumentOutOfRangeException(nameof(VaeObjectWeight), VaeObjectWeight, "must not be negative");
        if (CellLossWeight < 0) throw new ArgumentOutOfRangeException(nameof(CellLossWeight), CellLossWeight, "must not be negative");
        if (DiffusionObjectWeight < 0) throw new ArgumentOutOfRangeException(nameof(DiffusionObjectWeight), DiffusionObjectWeight, "must not be negative");
        if (AttributeLossWeight < 0) throw new ArgumentOutOfRangeException(nameof(AttributeLossWeight), AttributeLossWeight, "must not be negative");
        if (LatentCacheSize <= 0) throw new ArgumentOutOfRangeException(nameof(LatentCacheSize), LatentCacheSize, "must be positive");
        if (Sizes.Transformer.CrossAttentionDim != Sizes.Bert.HiddenSize)
            throw new ArgumentException($"Sizes: transformer cross_attention_dim {Sizes.Transformer.CrossAttentionDim} must equal BERT hidden_size {Sizes.Bert.HiddenSize}");
        if (Sizes.Transformer.CrossAttentionDimT5 != Sizes.T5.DModel)
            throw new ArgumentException($"Sizes: transformer cross_attention_dim_t5 {Sizes.Transformer.CrossAttentionDimT5} must equal T5 d_model {Sizes.T5.DModel}");
        if (Sizes.Transformer.InChannels != Sizes.Vae.LatentChannels)
            throw new ArgumentException($"Sizes: transformer in_channels {Sizes.Transformer.InChannels} must equal VAE latent_channels {Sizes.Vae.LatentChannels}");
        if (Sizes.Transformer.TextLen > Sizes.Bert.MaxPositionEmbeddings)
            throw new ArgumentException($"Sizes: text_len {Sizes.Transformer.TextLen} exceeds BERT max_position_embeddings {Sizes.Bert.MaxPositionEmbeddings}");
        Sizes.Transformer.Validate("Sizes.Transformer");
        Vae.Validated("Vae");
        TextWarmup?.Validated("TextWarmup");
        Diffusion.Validated("Diffusion");
        if (VaeFrom is not null)
        {
            var vaeConfig = Path.Combine(VaeFrom, "vae", "config.json");
            if (!File.Exists(vaeConfig)) throw new ArgumentException($"VaeFrom: {Path.Combine(VaeFrom, "vae")} is not a VAE directory (no config.json)");
            // Checked here, before the tokenizers are built, rather than when its weights fail to load into Sizes.Vae.
            var taken = AutoencoderKLConfig.Load(vaeConfig);
            if (!SameArchitecture(taken, Sizes.Vae))
                throw new ArgumentException($"VaeFrom: {vaeConfig} is a VAE of {Describe(taken)}; this run's sizes need {Describe(Sizes.Vae)}");
        }
        return this;
    }

    private static bool SameArchitecture(AutoencoderKLConfig a, AutoencoderKLConfig b) =>
        a.LatentChannels == b.LatentChannels && a.BlockOutChannels.SequenceEqual(b.BlockOutChannels) && a.LayersPerBlock == b.LayersPerBlock
        && a.NormNumGroups == b.NormNumGroups && a.InChannels == b.InChannels && a.OutChannels == b.OutChannels;

    private static string Describe(AutoencoderKLConfig c) =>
        $"latent_channels {c.LatentChannels}, block_out_channels [{string.Join(", ", c.BlockOutChannels)}], layers_per_block {c.LayersPerBlock}, norm_num_groups {c.NormNumGroups}";
}
