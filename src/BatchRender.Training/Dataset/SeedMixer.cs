namespace BatchRender.Training.Dataset;

/// <summary>Derives independent, stable seeds from (seed, index, stream) with SplitMix64: sample i of a dataset is
/// the same in every run and on every machine (unlike HashCode.Combine, which is randomised per process).</summary>
public static class SeedMixer
{
    public static int Mix(int seed, long index, int stream = 0)
    {
        ulong z = (ulong)(uint)seed * 0x9E3779B97F4A7C15ul ^ (ulong)index * 0xBF58476D1CE4E5B9ul ^ (ulong)(uint)stream * 0x94D049BB133111EBul;
        z += 0x9E3779B97F4A7C15ul;
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ul;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBul;
        z ^= z >> 31;
        return (int)(z & 0x7FFFFFFF);
    }
}
