using SixLabors.ImageSharp;
using SixLabors.ImageSharp.PixelFormats;

namespace BatchRender.Training.Evaluation;

/// <summary>An image as CIELAB planes, with Gaussian smoothing (separable, edge-clamped).</summary>
internal sealed class LabImage
{
    public readonly int Width, Height;
    public readonly float[] L, A, B;

    LabImage(int width, int height)
    {
        Width = width; Height = height;
        L = new float[width * height]; A = new float[width * height]; B = new float[width * height];
    }

    public static LabImage From(Image<Rgb24> image)
    {
        var lab = new LabImage(image.Width, image.Height);
        var pixels = new Rgb24[image.Width * image.Height];
        image.CopyPixelDataTo(pixels);
        for (int i = 0; i < pixels.Length; i++)
        {
            var c = LabColour.FromRgb(pixels[i].R, pixels[i].G, pixels[i].B);
            lab.L[i] = c.L; lab.A[i] = c.A; lab.B[i] = c.B;
        }
        return lab;
    }

    public LabColour this[int i] => new(L[i], A[i], B[i]);

    public LabImage Smoothed(float sigma)
    {
        var result = new LabImage(Width, Height);
        GaussianBlur.Apply(L, result.L, Width, Height, sigma);
        GaussianBlur.Apply(A, result.A, Width, Height, sigma);
        GaussianBlur.Apply(B, result.B, Width, Height, sigma);
        return result;
    }

    /// <summary>Per-channel median of the pixels at <paramref name="indices"/>.</summary>
    public LabColour Median(IReadOnlyList<int> indices)
    {
        if (indices.Count == 0) throw new ArgumentException("no pixels", nameof(indices));
        float M(float[] plane)
        {
            var v = new float[indices.Count];
            for (int i = 0; i < v.Length; i++) v[i] = plane[indices[i]];
            Array.Sort(v);
            return v[v.Length / 2];
        }
        return new LabColour(M(L), M(A), M(B));
    }
}
