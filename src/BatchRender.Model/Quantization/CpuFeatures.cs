namespace BatchRender.Model.Quantization;

/// <summary>What the CPU can do natively, read from /proc/cpuinfo's flags (Linux; elsewhere: nothing assumed).</summary>
public static class CpuFeatures
{
    private static readonly Lazy<IReadOnlySet<string>> Flags = new(ReadFlags);

    /// <summary>
    /// True when the CPU computes bf16 natively (AVX512_BF16 or AMX-BF16). Without it libtorch emulates bf16 GEMMs,
    /// measured ~100x slower than fp32 on the development machine (AVX2 only).
    /// </summary>
    public static bool HasNativeBFloat16 => HasNativeBFloat16In(Flags.Value);

    public static bool HasNativeBFloat16In(IReadOnlySet<string> flags) => flags.Contains("avx512_bf16") || flags.Contains("amx_bf16");

    /// <summary>The flags of the first processor in a /proc/cpuinfo text.</summary>
    public static IReadOnlySet<string> ParseCpuInfoFlags(string cpuinfo)
    {
        foreach (var line in cpuinfo.Split('\n'))
        {
            var colon = line.IndexOf(':');
            if (colon < 0 || line[..colon].Trim() != "flags") continue;
            return line[(colon + 1)..].Split(' ', StringSplitOptions.RemoveEmptyEntries).ToHashSet(StringComparer.Ordinal);
        }
        return new HashSet<string>();
    }

    private static IReadOnlySet<string> ReadFlags()
    {
        try { return File.Exists("/proc/cpuinfo") ? ParseCpuInfoFlags(File.ReadAllText("/proc/cpuinfo")) : new HashSet<string>(); }
        catch (IOException) { return new HashSet<string>(); }
    }
}
