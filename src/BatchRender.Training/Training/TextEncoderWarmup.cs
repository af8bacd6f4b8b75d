using BatchRender.Model.TextEncoders;
using BatchRender.Model.Tokenizers;
using BatchRender.Training.Dataset;
using static TorchSharp.torch;

namespace BatchRender.Training.Training;

/// <summary>
/// Stage b3, before the joint stage: BERT and T5 learn to state the scene their caption names (the
/// <see cref="SceneAttributeHeads"/> loss alone, no images), so the DiT attends to informative text from its first step
/// instead of to two randomly initialised encoders. Cheap: captions only, no latents, a few minutes on the 2-core machine.
/// Captions are drawn as the joint stage draws them (<see cref="DiffusionStage.Caption"/>), from the training stream,
/// so held-out combinations stay unseen.
/// </summary>
internal static class TextEncoderWarmup
{
    public static Func<int, Tensor> Loss(BertModel bert, T5EncoderModel t5, BertTextTokenizer bertTokenizer, MT5TextTokenizer t5Tokenizer,
                                         SceneAttributeHeads heads, DemoDataset dataset, int batchSize, int seed) => step =>
    {
        var random = new Random(SeedMixer.Mix(seed, step, 31));
        var drawn = Enumerable.Range(0, batchSize)
            .Select(_ => DiffusionStage.Caption(dataset.GetExample(random.Next()), dataset.Options, random)).ToList();
        var captions = drawn.Select(c => c.Text).ToList();
        var (bertIds, bertMask) = bertTokenizer.EncodeBatch(captions);
        var (t5Ids, t5Mask) = t5Tokenizer.EncodeBatch(captions);
        var bertStates = bert.forward(bertIds, bertMask);                                          // [B, text_len, D]
        var t5States = t5.forward(t5Ids, t5Mask);                                                  // [B, text_len_t5, D5]
        return heads.Loss(bertStates, bertMask, t5States, t5Mask, drawn.Select(c => SceneAttributeTargets.For(c.Names)).ToArray());
    };
}
