using BatchRender.Model.Autoencoders;
using BatchRender.Model.Pipelines;
using SixLabors.ImageSharp;
using SixLabors.ImageSharp.PixelFormats;
using TorchSharp;

namespace BatchRender.Training.Evaluation;

/// <summary>
/// The ceiling a diffusion model can reach through its autoencoder: each prompt's ground-truth render encoded to
/// the posterior mean and decoded again. Judged like a model's renders, it tells whether a weak attribute is lost in
/// the VAE (the DiT cannot draw what the decoder cannot) or in the DiT.
/// </summary>
public static class AutoencoderRoundTripRenderer
{
    public static EvalRenderer Create(AutoencoderKL vae, EvalSet set) => (prompts, cancellationToken) =>
    {
        var results = new List<RenderedItem>(prompts.Count);
        using var _ = torch.no_grad();
        foreach (var prompt in prompts)
        {
            cancellationToken.ThrowIfCancellationRequested();
            var frames = set.RenderGroundTruth(prompt);
            results.Add(new RenderedItem(frames.Select(frame => { using (frame) return RoundTrip(vae, frame); }).ToList()));
        }
        return results;
    };

    static Image<Rgb24> RoundTrip(AutoencoderKL vae, Image<Rgb24> image)
    {
        using var scope = torch.NewDisposeScope();
        var rgb = new byte[image.Width * image.Height * 3];
        image.CopyPixelDataTo(rgb);
        var decoded = vae.Decode(vae.Encode(ImageCodec.ToTensor(rgb, image.Width, image.Height, torch.CPU)));
        return Image.LoadPixelData<Rgb24>(ImageCodec.ToRgbBytes(decoded)[0], image.Width, image.Height);
    }
}
