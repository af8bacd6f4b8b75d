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
/// degraded ("blurry, low quality") shares, which are what classifier-free guidance and its negative prompt use.
/// With <see cref="SceneAttributeHeads"/>, the text encoders also learn to state the scene their caption names.
/// Objects cover a few percent of the latent grid, so a plain MSE spends almost all of its gradient on the flat
/// background the model learns first, and the objects' colour and shape, which the prompts are about, come last: the
/// squared error on a latent cell that holds an object weighs <c>1 + objectWeight</c> (the weighted mean keeps the
/// loss's scale, and every cell's optimum is still the conditional mean, so only where the capacity goes changes).</summary>
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
    private readonly SceneAttributeHeads? attributeHeads;
    private readonly double attributeLossWeight;
    private readonly double objectWeight;
    private readonly LatentCellAttributeHead? cellHead;
    private readonly double cellLossWeight;
    private readonly byte[][]? cellColours, cellShapes;                                          // per example [h * w]

    public DiffusionStage(HunyuanDiT2DModel transformer, BertModel bert, T5EncoderModel t5, BertTextTokenizer bertTokenizer,
                          MT5TextTokenizer t5Tokenizer, LatentCache cache, double latentScale, DemoDataset dataset,
                          SchedulerConfig scheduler, int imageSize, int vaeScaleFactor,
                          SceneAttributeHeads? attributeHeads = null, double attributeLossWeight = 0, double objectWeight = 0,
                          LatentCellAttributeHead? cellHead = null, double cellLossWeight = 0)
    {
        this.cellHead = cellHead;
        this.cellLossWeight = cellLossWeight;
        this.objectWeight = objectWeight;
        this.attributeHeads = attributeHeads;
        this.attributeLossWeight = attributeLossWeight;
        this.transformer = transformer;
        this.bert = bert;
        this.t5 = t5;
        this.bertTokenizer = bertTokenizer;
        this.t5Tokenizer = t5Tokenizer;
        this.cache = cache;
        this.latentScale = latentScale;
        datasetOptions = dataset.Options;
        examples = Enumerable.Range(0, cache.Count).Select(i => dataset.GetExample(i)).ToArray();
        if (cellHead is not null)
        {
            var targets = examples.Select(e => LatentCellTargets.For(e, datasetOptions.ImageSize, (int)cache.Shape[1])).ToArray();
            cellColours = targets.Select(t => t.Colour).ToArray();
            cellShapes = targets.Select(t => t.Shape).ToArray();
        }
        var schedule = NoiseSchedule.FromConfig(scheduler);
        numTrainTimesteps = schedule.NumTrainTimesteps;
        var abar = tensor(schedule.AlphasCumprod.Select(a => (float)a).ToArray());
        sqrtAlphasCumprod = abar.sqrt().DetachFromDisposeScope();
        sqrtOneMinusAlphasCumprod = (1 - abar).sqrt().DetachFromDisposeScope();
        var (cos, sin) = transformer.RotaryTables(imageSize, imageSize, vaeScaleFactor);
        rope = (cos.DetachFromDisposeScope(), sin.DetachFromDisposeScope());
    }

    /// <summary>A fresh caption for a cached example, drawn as <see cref="DemoDataset.GetExample"/> draws one, and the
    /// scene it names (null for the empty caption and for "blurry, low quality" alone).</summary>
    public static (string Text, SceneSpec? Names) Caption(TrainingExample example, DemoDatasetOptions options, Random random)
    {
        var language = random.NextDouble() < options.ChineseShare ? Language.Chinese : Language.English;
        string caption = CaptionGenerator.Describe(example.Scene, language, random);
        SceneSpec? names = example.Scene;
        if (example.Degraded)
        {
            string words = CaptionGenerator.DegradedPrompt(language, random);
            bool wordsOnly = random.Next(2) == 0;
            caption = wordsOnly ? words : caption + (language == Language.English ? ", " : "，") + words;
            if (wordsOnly) names = null;
        }
        return random.NextDouble() < options.CaptionDropout ? ("", null) : (caption, names);
    }

    public Func<int, Tensor> Loss(int batchSize, int seed) => step =>
    {
        var random = new Random(SeedMixer.Mix(seed, step, 21));
        var indices = Enumerable.Range(0, batchSize).Select(_ => random.Next(cache.Count)).ToArray();
        var drawn = indices.Select(i => Caption(examples[i], datasetOptions, random)).ToList();
        var captions = drawn.Select(c => c.Text).ToList();
        var phases = indices.Select(i => examples[i].FramePhase ?? 0f).ToArray();
        var timesteps = indices.Select(_ => (long)random.Next(numTrainTimesteps)).ToArray();

        using var generator = new Generator((ulong)SeedMixer.Mix(seed, step, 22));
        var (loss, text, features) = VelocityLoss((transformer, bert, t5), indices, captions, phases, timesteps, generator, objectWeight,
                                                  withFeatures: cellHead is not null);
        if (cellHead is not null)
        {
            var cells = cellHead.Loss(features!, CellTargets(cellColours!, indices), CellTargets(cellShapes!, indices));
            LastCellLoss = cells.item<float>();
            loss = loss + cellLossWeight * cells;
        }
        if (attributeHeads is null) return loss;
        var attributes = attributeHeads.Loss(text.BertStates, text.BertMask, text.T5States, text.T5Mask, drawn.Select(c => SceneAttributeTargets.For(c.Names)).ToArray());
        LastAttributeLoss = attributes.item<float>();
        return loss + attributeLossWeight * attributes;
    };

    /// <summary>[B, h, w] int64 classes of the examples at <paramref name="indices"/>.</summary>
    private Tensor CellTargets(byte[][] perExample, int[] indices)
    {
        long h = cache.Shape[1], w = cache.Shape[2];
        var flat = new long[indices.Length * h * w];
        for (int i = 0; i < indices.Length; i++)
            for (int j = 0; j < h * w; j++) flat[i * h * w + j] = perExample[indices[i]][j];
        return tensor(flat, [indices.Length, h, w]);
    }

    /// <summary>The v-prediction MSE of the cached latents at <paramref name="indices"/> noised to
    /// <paramref name="timesteps"/> with noise from <paramref name="generator"/>, conditioned on the captions, with
    /// object cells weighing <c>1 + objectWeight</c>; the encoders' states, for the attribute heads; and, with
    /// <paramref name="withFeatures"/>, the DiT's token states after <see cref="FeatureBlock"/>, for the latent-cell head.</summary>
    private (Tensor Loss, (Tensor BertStates, Tensor BertMask, Tensor T5States, Tensor T5Mask) Text, Tensor? Features) VelocityLoss(
        (HunyuanDiT2DModel Transformer, BertModel Bert, T5EncoderModel T5) nets, int[] indices, IReadOnlyList<string> captions,
        float[] phases, long[] timesteps, Generator generator, double objectWeight, bool withFeatures = false)
    {
        var x0 = cache.Batch(indices, latentScale);                                              // [B, C, h, w]
        var noise = randn(x0.shape, generator: generator);
        var t = tensor(timesteps);
        var a = sqrtAlphasCumprod.index_select(0, t).reshape(-1, 1, 1, 1);
        var s = sqrtOneMinusAlphasCumprod.index_select(0, t).reshape(-1, 1, 1, 1);
        var noisy = a * x0 + s * noise;
        var velocity = a * noise - s * x0;                                                        // v-prediction target

        var (bertIds, bertMask) = bertTokenizer.EncodeBatch(captions);
        var (t5Ids, t5Mask) = t5Tokenizer.EncodeBatch(captions);
        var bertStates = nets.Bert.forward(bertIds, bertMask);                                    // [B, text_len, D]
        var t5States = nets.T5.forward(t5Ids, t5Mask);                                            // [B, text_len_t5, D5]
        using var text = nets.Transformer.PrepareText(bertStates, bertMask, t5States, t5Mask, framePhase: tensor(phases));
        var timestep = t.to(ScalarType.Float32);
        Tensor output;
        Tensor? features = null;
        if (withFeatures) (output, features) = nets.Transformer.ForwardWithFeatures(noisy, timestep, text, rope, FeatureBlock(nets.Transformer));
        else output = nets.Transformer.forward(noisy, timestep, text, rope);
        var prediction = output[.., ..(int)x0.shape[1]];
        return (objectWeight == 0 ? nn.functional.mse_loss(prediction, velocity) : WeightedMse(prediction, velocity, indices, objectWeight),
                (bertStates, bertMask, t5States, t5Mask), features);
    }

    private Tensor WeightedMse(Tensor prediction, Tensor velocity, int[] indices, double objectWeight)
    {
        var weight = 1 + objectWeight * cache.ObjectCellBatch(indices);                           // [B, 1, h, w]
        return (weight * (prediction - velocity).pow(2)).sum() / (weight.sum() * velocity.shape[1]);
    }

    /// <summary>The attribute heads' loss of the latest step (NaN without heads).</summary>
    public double LastAttributeLoss { get; private set; } = double.NaN;

    /// <summary>The latent-cell head's loss of the latest step (NaN without it).</summary>
    public double LastCellLoss { get; private set; } = double.NaN;

    /// <summary>The block whose token states <see cref="LatentCellAttributeHead"/> reads: the bottom of the U (the last
    /// block before the long skips come back), where the text has been read and the output not yet drawn.</summary>
    public static int FeatureBlock(HunyuanDiT2DModel transformer) => transformer.Config.NumLayers / 2;

    /// <summary>
    /// How much the captions inform the model: the v-loss of a fixed probe set (training scenes, every caption naming
    /// its scene, noise levels t in [300, 1000) where layout and colour are decided) with each scene's own caption and
    /// with its neighbour's. A model that ignores the text scores a ratio of 1; the smaller, the more it uses them.
    /// Unweighted (every latent cell alike), so probes of runs with different object weights compare.
    /// </summary>
    /// <param name="weights">The networks to probe (the EMA shadows, say); the trained ones when null.</param>
    public TextConditioningProbe ProbeTextConditioning((HunyuanDiT2DModel Transformer, BertModel Bert, T5EncoderModel T5)? weights = null,
                                                       int count = 64, int seed = 7)
    {
        var nets = weights ?? (transformer, bert, t5);
        var random = new Random(seed);
        var indices = Enumerable.Range(0, count).Select(_ => random.Next(cache.Count)).ToArray();
        var captions = indices.Select(i => CaptionGenerator.Describe(examples[i].Scene, random.Next(2) == 0 ? Language.English : Language.Chinese, random)).ToArray();
        var shifted = captions.Skip(1).Append(captions[0]).ToArray();
        var phases = indices.Select(i => examples[i].FramePhase ?? 0f).ToArray();
        var timesteps = indices.Select(_ => (long)random.Next(300, numTrainTimesteps)).ToArray();
        var modules = new nn.Module[] { nets.Transformer, nets.Bert, nets.T5 };
        var wasTraining = modules.Select(m => m.training).ToArray();
        foreach (var m in modules) m.eval();
        try
        {
            using var _ = no_grad();
            using var scope = NewDisposeScope();
            double Loss(string[] text)
            {
                double sum = 0;
                for (int start = 0; start < count; start += 32)
                {
                    using var inner = NewDisposeScope();
                    int n = Math.Min(32, count - start);
                    using var generator = new Generator((ulong)(seed * 1000 + start));
                    var (loss, _, _) = VelocityLoss(nets, indices[start..(start + n)], text[start..(start + n)], phases[start..(start + n)],
                                                 timesteps[start..(start + n)], generator, objectWeight: 0);
                    sum += loss.item<float>() * n;
                }
                return sum / count;
            }
            return new TextConditioningProbe(Loss(captions), Loss(shifted));
        }
        finally
        {
            for (int i = 0; i < modules.Length; i++) modules[i].train(wasTraining[i]);
        }
    }
}

/// <summary>See <see cref="DiffusionStage.ProbeTextConditioning"/>.</summary>
public sealed record TextConditioningProbe(double OwnCaptionLoss, double OtherCaptionLoss)
{
    public double Ratio => OwnCaptionLoss / OtherCaptionLoss;
    public override string ToString() => $"probe v-loss {OwnCaptionLoss:F4} with own captions, {OtherCaptionLoss:F4} with others' (ratio {Ratio:F3})";
}
