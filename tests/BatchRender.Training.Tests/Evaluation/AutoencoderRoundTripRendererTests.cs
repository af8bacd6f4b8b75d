using BatchRender.Model.Autoencoders;
using BatchRender.Training.Dataset;
using BatchRender.Training.Evaluation;
using TorchSharp;

namespace BatchRender.Training.Tests.Evaluation;

/// <summary>The VAE ceiling of <c>eval --vae-ceiling</c>: every ground-truth frame goes through a real (tiny, random)
/// autoencoder and comes back at the image size, so its verdicts judge the VAE, not the dataset renderer.</summary>
public sealed class AutoencoderRoundTripRendererTests
{
    [Fact]
    public void Passes_every_ground_truth_frame_through_the_autoencoder()
    {
        var set = EvalSet.Create(new HeldOutSplit(1), new EvalSetOptions { ImageScenes = 1, VideoClips = 1, FramesPerClip = 3, InpaintItems = 0 });
        torch.manual_seed(5);
        using var vae = new AutoencoderKL(new AutoencoderKLConfig
            { BlockOutChannels = [8, 16, 16], LayersPerBlock = 1, LatentChannels = 4, NormNumGroups = 4, ScalingFactor = 0.5 }, torch.CPU);
        vae.eval();

        var rendered = AutoencoderRoundTripRenderer.Create(vae, set)(set.Prompts, CancellationToken.None);

        Assert.Equal(set.Prompts.Count, rendered.Count);
        for (int i = 0; i < set.Prompts.Count; i++)
        {
            var truth = set.RenderGroundTruth(set.Prompts[i]);
            Assert.Equal(truth.Count, rendered[i].Frames.Count);
            for (int f = 0; f < truth.Count; f++)
            {
                Assert.Equal((set.ImageSize, set.ImageSize), (rendered[i].Frames[f].Width, rendered[i].Frames[f].Height));
                Assert.True(AttributeAnalyser.MeanAbsoluteChange(truth[f], rendered[i].Frames[f]) > 1f / 255,
                    $"{set.Prompts[i].Id} frame {f}: a random autoencoder returned the ground truth unchanged");
                truth[f].Dispose();
            }
            rendered[i].Dispose();
        }
    }
}
