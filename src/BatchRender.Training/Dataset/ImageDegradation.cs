using SixLabors.ImageSharp;
using SixLabors.ImageSharp.PixelFormats;
using SixLabors.ImageSharp.Processing;

namespace BatchRender.Training.Dataset;

/// <summary>Gaussian blur and additive Gaussian noise: the "blurry, low quality" training images that the generic
/// negative prompts describe, and the degradations the analyser must survive.</summary>
public static class ImageDegradation
{
    /// <summary>Blurs with <paramref name="blurSigma"/> pixels (0 = none), then adds noise with standard deviation
    /// <paramref name="noiseSigma"/> in 0..255 units, seeded. Changes the image in place.</summary>
    public static void Degrade(Image<Rgb24> image, float blurSigma, float noiseSigma, int seed)
    {
        if (blurSigma > 0) image.Mutate(x => x.GaussianBlur(blurSigma));
        if (noiseSigma <= 0) return;
        var random = new Random(seed);
        image.ProcessPixelRows(rows =>
        {
            for (int y = 0; y < rows.Height; y++)
            {
                var row = rows.GetRowSpan(y);
                for (int x = 0; x < row.Length; x++)
                {
                    ref var p = ref row[x];
                    p = new Rgb24(Add(p.R, random, noiseSigma), Add(p.G, random, noiseSigma), Add(p.B, random, noiseSigma));
                }
            }
        });
    }

    static byte Add(byte v, Random random, float sigma)
    {
        // Box-Muller: one standard normal from two uniforms.
        double u1 = 1.0 - random.NextDouble(), u2 = random.NextDouble();
        double n = Math.Sqrt(-2.0 * Math.Log(u1)) * Math.Cos(2 * Math.PI * u2);
        return (byte)Math.Clamp((int)Math.Round(v + n * sigma), 0, 255);
    }
}
