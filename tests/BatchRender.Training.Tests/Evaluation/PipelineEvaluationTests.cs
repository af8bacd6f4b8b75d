using BatchRender.Model.Autoencoders;
using BatchRender.Model.Configuration;
using BatchRender.Model.Pipelines;
using BatchRender.Model.Schedulers;
using BatchRender.Model.TextEncoders;
using BatchRender.Model.Transformers;
using BatchRender.Training.Dataset;
using BatchRender.Training.Evaluation;
using BatchRender.Training.Tokenizers;
using TorchSharp;

namespace BatchRender.Training.Tests.Evaluation;

/// <summary>The evaluation end to end through the real pipeline: a tiny, randomly initialised model of the real
/// architecture whose tokenizers are the demo builder's, written in the diffusers layout and loaded by the pipeline's
/// loader. Its renders are noise, so the scores are near zero; what is checked is the plumbing: prompts in both
/// languages tokenize, clips come back with their frames, and inpainting leaves every pixel outside the mask alone.</summary>
public sealed class PipelineEvaluationTests : IDisposable
{
    readonly string directory = Directory.CreateTempSubdirectory("demo-eval-pipeline-").FullName;

    public void Dispose() => Directory.Delete(directory, recursive: true);

    [Fact]
    public void Evaluates_a_tiny_model_through_the_pipeline()
    {
        var tokenizers = DemoTokenizerBuilder.Build(Path.Combine(directory, "tokenizers"),
            new DemoTokenizerOptions { CorpusCaptions = 2000, BertMaxLength = 32, T5MaxLength = 32 });
        var model = Path.Combine(directory, "model");
        torch.manual_seed(3);
        using (var transformer = new HunyuanDiT2DModel(new HunyuanDiTConfig
        {
            NumAttentionHeads = 2, AttentionHeadDim = 16, HiddenSize = 32, InChannels = 4, PatchSize = 2, SampleSize = 16,
            NumLayers = 2, MlpRatio = 2.0, CrossAttentionDim = 32, CrossAttentionDimT5 = 32, PooledProjectionDim = 32,
            TextLen = 32, TextLenT5 = 32, UseStyleCondAndImageMetaSize = false, FramePhaseEmbedding = true,
        }, torch.CPU))
        using (var vae = new AutoencoderKL(new AutoencoderKLConfig
        {
            BlockOutChannels = [8, 8, 16, 16], LayersPerBlock = 1, LatentChannels = 4, NormNumGroups = 4, ScalingFactor = 0.5,
        }, torch.CPU))
        using (var bert = new BertModel(new BertConfig
        {
            VocabSize = tokenizers.BertVocabSize, HiddenSize = 32, NumHiddenLayers = 1, NumAttentionHeads = 2, IntermediateSize = 64,
            MaxPositionEmbeddings = 64, AddPoolingLayer = false,
        }, torch.CPU))
        using (var t5 = new T5EncoderModel(new T5Config
        {
            VocabSize = tokenizers.T5VocabSize, DModel = 32, DKv = 16, DFf = 64, NumLayers = 1, NumHeads = 2,
        }, torch.CPU))
        {
            var scheduler = SchedulerConfig.Parse("""
                { "_class_name": "DDPMScheduler", "num_train_timesteps": 1000, "beta_start": 0.00085, "beta_end": 0.018,
                  "beta_schedule": "scaled_linear", "prediction_type": "v_prediction", "clip_sample": false, "steps_offset": 1 }
                """);
            ModelDirectoryWriter.Save(model, transformer, vae, bert, t5, scheduler, tokenizers.BertDirectory, tokenizers.T5Directory);
        }

        var set = EvalSet.Create(new HeldOutSplit(1), new EvalSetOptions { ImageScenes = 2, VideoClips = 1, FramesPerClip = 3, InpaintItems = 1 });
        using var pipeline = HunyuanDiTPipeline.Load(new PipelineLoadOptions { ModelDirectory = model, Device = "cpu" });
        var renderer = PipelineEvalRenderer.Create(pipeline, set.ImageSize, new EvalRenderSettings { Steps = 2, BatchSize = 4 });
        using var result = new EvalRunner(new AttributeAnalyser(), new EvalRunOptions { Model = "tiny" }).Run(set, [("fp32", renderer)]);

        Assert.Equal(1.0, result.Report.AnalyserOnGroundTruth);
        Assert.True(result.Report.Inpaint.OutsideUnchanged, "the pipeline changed pixels outside the inpainting mask");
        var items = result.Items["fp32"];
        Assert.Equal(set.Prompts.Count, items.Count);
        Assert.All(items, i => Assert.Equal((128, 128), (i.Rendered.Image.Width, i.Rendered.Image.Height)));
        Assert.All(items.Where(i => i.Prompt.Kind == EvalKind.Video), i => Assert.Equal(3, i.Rendered.Frames.Count));
        Assert.Contains("一", EvalHtmlReport.Render(result));
    }
}
