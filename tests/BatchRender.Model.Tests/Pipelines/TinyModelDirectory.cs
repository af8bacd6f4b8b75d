using BatchRender.Model.Autoencoders;
using BatchRender.Model.Configuration;
using BatchRender.Model.Pipelines;
using BatchRender.Model.Schedulers;
using BatchRender.Model.TextEncoders;
using BatchRender.Model.Transformers;
using TorchSharp;
using static TorchSharp.torch;

namespace BatchRender.Model.Tests.Pipelines;

/// <summary>
/// A complete, randomly initialised Hunyuan-DiT model directory of the real architecture at a tiny size (every
/// component, both tokenizers, the scheduler), written with <see cref="ModelDirectoryWriter"/> as the trainer writes the
/// demo model. Renders are noise-like, but every code path of the pipeline runs for real.
/// </summary>
public static class TinyModelDirectory
{
    public static readonly string[] VocabularyWords =
    [
        "a", "an", "the", "red", "green", "blue", "yellow", "star", "circle", "square", "triangle", "in", "on", "top", "left",
        "right", "middle", "corner", "background", "large", "small", "flower", "moving", "from", "to", "blurry", "low", "quality",
    ];

    public static readonly string ChineseCharacters = "蓝色背景左上角有一个大的红五星朵黄花慢绽放低质量模糊";

    public static string Create(string directory, bool framePhase = false, long seed = 1)
    {
        torch.manual_seed(seed);
        var scratch = Path.Combine(directory, "_tokenizers");
        var bertTokenizer = Path.Combine(scratch, "tokenizer");
        Directory.CreateDirectory(bertTokenizer);
        var vocab = new List<string> { "[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]" };
        vocab.AddRange(VocabularyWords);
        vocab.AddRange(ChineseCharacters.Distinct().Select(c => c.ToString()));
        vocab.AddRange([",", "."]);
        File.WriteAllLines(Path.Combine(bertTokenizer, "vocab.txt"), vocab);
        File.WriteAllText(Path.Combine(bertTokenizer, "tokenizer_config.json"), """{ "do_lower_case": true, "tokenize_chinese_chars": true, "model_max_length": 16 }""");
        var t5Tokenizer = Path.Combine(scratch, "tokenizer_2");
        Directory.CreateDirectory(t5Tokenizer);
        File.Copy(Path.Combine(AppContext.BaseDirectory, "Fixtures", "mt5-tiny", "spiece.model"), Path.Combine(t5Tokenizer, "spiece.model"));

        var transformerConfig = new HunyuanDiTConfig
        {
            NumAttentionHeads = 2, AttentionHeadDim = 16, HiddenSize = 32, InChannels = 4, PatchSize = 2, SampleSize = 8,
            NumLayers = 4, MlpRatio = 2.0, CrossAttentionDim = 32, CrossAttentionDimT5 = 32, PooledProjectionDim = 32,
            TextLen = 16, TextLenT5 = 16, UseStyleCondAndImageMetaSize = false, FramePhaseEmbedding = framePhase,
        };
        var device = TestDevice.Current;
        using var transformer = new HunyuanDiT2DModel(transformerConfig, device);
        using var vae = new AutoencoderKL(new AutoencoderKLConfig
        {
            BlockOutChannels = [8, 8, 16, 16], LayersPerBlock = 1, LatentChannels = 4, NormNumGroups = 4, ScalingFactor = 0.5,
        }, device);
        using var bert = new BertModel(new BertConfig
        {
            VocabSize = vocab.Count, HiddenSize = 32, NumHiddenLayers = 2, NumAttentionHeads = 2, IntermediateSize = 64,
            MaxPositionEmbeddings = 32, AddPoolingLayer = false,
        }, device);
        using var t5 = new T5EncoderModel(new T5Config
        {
            VocabSize = 350, DModel = 32, DKv = 16, DFf = 64, NumLayers = 2, NumHeads = 2,
        }, device);
        var scheduler = SchedulerConfig.Parse("""
            { "_class_name": "DDPMScheduler", "num_train_timesteps": 1000, "beta_start": 0.00085, "beta_end": 0.018,
              "beta_schedule": "scaled_linear", "prediction_type": "v_prediction", "variance_type": "fixed_small",
              "clip_sample": false, "steps_offset": 1, "timestep_spacing": "leading", "set_alpha_to_one": false }
            """);
        var model = Path.Combine(directory, "model");
        ModelDirectoryWriter.Save(model, transformer, vae, bert, t5, scheduler, bertTokenizer, t5Tokenizer);
        return model;
    }
}
