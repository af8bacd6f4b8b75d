namespace BatchRender.Training.Dataset;

/// <summary>Seeded 2-D value noise and its fractal sum, in [0, 1]. Deterministic for a seed: no shared state.
/// Gives the ink-wash style its washes, brush streaks and ragged edges.</summary>
public readonly struct ValueNoise(int seed)
{
    public float Sample(float x, float y)
    {
        int ix = (int)MathF.Floor(x), iy = (int)MathF.Floor(y);
        float fx = x - ix, fy = y - iy;
        float ux = fx * fx * (3 - 2 * fx), uy = fy * fy * (3 - 2 * fy);
        float a = Lattice(ix, iy), b = Lattice(ix + 1, iy), c = Lattice(ix, iy + 1), d = Lattice(ix + 1, iy + 1);
        return a + (b - a) * ux + (c - a) * uy + (a - b - c + d) * ux * uy;
    }

    /// <summary>Fractal sum of <paramref name="octaves"/> octaves, each twice the frequency and half the weight.</summary>
    public float Fractal(float x, float y, int octaves)
    {
        float sum = 0, weight = 1, total = 0;
        for (int o = 0; o < octaves; o++)
        {
            sum += weight * Sample(x, y);
            total += weight; weight *= 0.5f; x *= 2.03f; y *= 2.03f;
        }
        return sum / total;
    }

    float Lattice(int x, int y)
    {
        uint h = (uint)seed * 0x9E3779B1u ^ (uint)x * 0x85EBCA77u ^ (uint)y * 0xC2B2AE3Du;
        h ^= h >> 15; h *= 0x2C1B3C6Du; h ^= h >> 12; h *= 0x297A2D39u; h ^= h >> 15;
        return (h & 0xFFFFFF) / (float)0xFFFFFF;
    }
}
