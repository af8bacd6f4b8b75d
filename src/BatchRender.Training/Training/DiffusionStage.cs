using BatchRender.Model.Schedulers;
using BatchRender.Model.TextEncoders;
using BatchRender.Model.Tokenizers;
using BatchRender.Model.Transformers;
using BatchRender.Training.Dataset;
using TorchSharp;
using static TorchSharp.torch;

namespace BatchRender.Training.Training;

/// <summary>Stage c: BERT, T5 and the DiT trained jointly on cached latents with the v-prediction objective of the
/// DDPM schedule the model ships with. Each sample is a cached scene (still, or a clip frame with its phase) whose
/// caption is drawn afresh every time, in either language, with the dataset's unconditional (empty caption) and
/// degraded ("blurry, low quality") shares, which are what classifier-free guidance and its negative prompt use.</summary>
internal sealed class DiffusionStage
{
    private readonly HunyuanDiT2DModel transformer;
    private readonly BertModel bert;
    private readonly T5EncoderModel t5;
    private readonly BertTextTokenizer bertTokenizer;
    private readonly MT5TextTokenizer t5Tokenizer;
    private readonly LatentCache cache;
    private readonly double latentScale;
    private readonly TrainingExample[] examples;
    private readonly DemoDatasetOptions datasetOptions;
    private readonly Tensor sqrtAlphasCumprod, sqrtOneMinusAlphasCumprod;
    private readonly (Tensor Cos, Tensor Sin) rope;
    private readonly int numTrainTimesteps;

    public DiffusionStage(HunyuanDiT2DModel transformer, BertModel bert, T5EncoderModel t5, BertTextTokenizer bertTokenizer,
                          MT5TextTokenizer t5Tokenizer, LatentCache cache, double latentScale, DemoDataset dataset,
                          SchedulerConfig scheduler, int imageSize, int vaeScaleFactor)
    {
        this.transformer = transformer;
        this.bert = bert;
        this.t5 = t5;
        this.bertTokenizer = bertTokenizer;
        this.t5Tokenizer = t5Tokenizer;
        this.cache = cache;
        this.latentScale = latentScale;
        datasetOptions = dataset.Options;
        examples = Enumerable.Range(0, cache.Count).Select(i => dataset.GetExample(i)).ToArray();
        var schedule = NoiseSchedule.FromConfig(scheduler);
        numTrainTimesteps = schedule.NumTrainTimesteps;
        var abar = tensor(schedule.AlphasCumprod.Select(a => (float)a).ToArray());
        sqrtAlphasCumprod = abar.sqrt().DetachFromDisposeScope();
        sqrtOneMinusAlphasCumprod = (1 - abar).sqrt().DetachFromDisposeScope();
        var (cos, sin) = transformer.RotaryTables(imageSize, imageSize, vaeScaleFactor);
        rope = (cos.DetachFromDisposeScope(), sin.DetachFromDisposeScope());
    }

    /// <summary>A fresh caption for a cached example, drawn as <see cref="DemoDataset.GetExample"/> draws one.</summary>
    public static string Caption(TrainingExample example, DemoDatasetOptions options, Random random)
    {
        var language = random.NextDouble() < options.ChineseShare ? Language.Chinese : Language.English;
        string caption = CaptionGenerator.Describe(example.Scene, language, random);
        if (example.Degraded)
        {
            string words = CaptionGenerator.DegradedPrompt(language, random);
            caption = random.Next(2) == 0 ? words : caption + (language == Language.English ? ", " : "，") + words;
        }
        return random.NextDouble() < options.CaptionDropout ? "" : caption;
    }

    public Func<int, Tensor> Loss(int batchSize, int seed) => step =>
    {
        var random = new Random(SeedMixer.Mix(seed, step, 21));
        var indices = Enumerable.Range(0, batchSize).Select(_ => random.Next(cache.Count)).ToArray();
        var captions = indices.Select(i => Caption(examples[i], datasetOptions, random)).ToList();
        var phases = indices.Select(i => examples[i].FramePhase ?? 0f).ToArray();
        var timesteps = indices.Select(_ => (long)random.Next(numTrainTimesteps)).ToArray();

        var x0 = cache.Batch(indices, latentScale);                                              // [B, 4, h, w]
        using var generator = new Generator((ulong)SeedMixer.Mix(seed, step, 22));
        var noise = randn(x0.shape, generator: generator);
        var t = tensor(timesteps);
        var a = sqrtAlphasCumprod.index_select(0, t).reshape(-1, 1, 1, 1);
        var s = sqrtOneMinusAlphasCumprod.index_select(0, t).reshape(-1, 1, 1, 1);
        var noisy = a * x0 + s * noise;
        var velocity = a * noise - s * x0;                                                        // v-prediction target

        var (bertIds, bertMask) = bertTokenizer.EncodeBatch(captions);
        var (t5Ids, t5Mask) = t5Tokenizer.EncodeBatch(captions);
        var bertStates = bert.forward(bertIds, bertMask);                                         // [B, text_len, D]
        var t5States = t5.forward(t5Ids, t5Mask);                                                 // [B, text_len_t5, D5]
        var output = transformer.forward(noisy, t.to(ScalarType.Float32), bertStates, bertMask, t5States, t5Mask, rope,
                                         framePhase: tensor(phases));
        var prediction = output[.., ..(int)x0.shape[1]];
        return nn.functional.mse_loss(prediction, velocity);
    };
}
