namespace BatchRender.Training.Evaluation;

/// <summary>Separable Gaussian blur of one float plane (edges clamped), for the analyser's own measurements.</summary>
internal static class GaussianBlur
{
    /// <summary>Blurs <paramref name="source"/> (<paramref name="width"/> x <paramref name="height"/>, row-major) into
    /// <paramref name="destination"/>, with a kernel cut at 3 sigma.</summary>
    public static void Apply(ReadOnlySpan<float> source, Span<float> destination, int width, int height, float sigma)
    {
        int radius = (int)MathF.Ceiling(3 * sigma);
        var kernel = new float[2 * radius + 1];
        float sum = 0;
        for (int k = -radius; k <= radius; k++) sum += kernel[k + radius] = MathF.Exp(-k * k / (2 * sigma * sigma));
        for (int k = 0; k < kernel.Length; k++) kernel[k] /= sum;
        var rows = new float[width * height];
        for (int y = 0; y < height; y++)
            for (int x = 0; x < width; x++)
            {
                float s = 0;
                for (int k = -radius; k <= radius; k++) s += kernel[k + radius] * source[y * width + Math.Clamp(x + k, 0, width - 1)];
                rows[y * width + x] = s;
            }
        for (int y = 0; y < height; y++)
            for (int x = 0; x < width; x++)
            {
                float s = 0;
                for (int k = -radius; k <= radius; k++) s += kernel[k + radius] * rows[Math.Clamp(y + k, 0, height - 1) * width + x];
                destination[y * width + x] = s;
            }
    }
}
