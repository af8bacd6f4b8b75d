namespace BatchRender.Core.Manifests;

/// <summary>
/// The files beside a manifest (inpaint images and masks). Paths reaching an implementation have passed
/// <see cref="ManifestRules.CheckInputPath"/> (relative, '/'-separated, no '..'); an implementation still resolves them
/// strictly inside the manifest's own folder (the blob prefix in the <c>manifests</c> container, or the directory of a
/// local file) and refuses anything that would leave it.
/// </summary>
public interface IManifestInputs
{
    /// <summary>Whether the input exists and its first bytes (at least <see cref="InputCheck.HeaderLength"/> when the
    /// file is that long). Throws only for failures that are not the manifest's fault (storage unreachable).</summary>
    Task<InputCheck> CheckAsync(string relativePath, CancellationToken cancellationToken);
}

/// <summary>The answer of <see cref="IManifestInputs.CheckAsync"/>.</summary>
public sealed record InputCheck
{
    /// <summary>Bytes an implementation reads from the start of a file: enough for every format check.</summary>
    public const int HeaderLength = 16;

    public bool Exists { get; init; }
    /// <summary>The file's first bytes (up to <see cref="HeaderLength"/>).</summary>
    public ReadOnlyMemory<byte> Header { get; init; }
    /// <summary>Why the path is refused although it may exist (it resolves outside the manifest's folder, it is a folder).</summary>
    public string? Refusal { get; init; }

    public static InputCheck Found(ReadOnlyMemory<byte> header) => new() { Exists = true, Header = header };
    public static readonly InputCheck Missing = new() { Exists = false };
    public static InputCheck Refused(string reason) => new() { Exists = false, Refusal = reason };
}

/// <summary>Image formats by magic bytes: inpaint inputs must be PNG or JPEG.</summary>
public static class InputImageFormats
{
    public static bool IsPng(ReadOnlySpan<byte> header) => header.StartsWith(new byte[] { 0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A });
    public static bool IsJpeg(ReadOnlySpan<byte> header) => header.StartsWith(new byte[] { 0xFF, 0xD8, 0xFF });

    /// <summary>Null for PNG or JPEG; else what the file looks like instead ("a GIF image", "empty").</summary>
    public static string? Problem(ReadOnlySpan<byte> header)
    {
        if (IsPng(header) || IsJpeg(header)) return null;
        var what =
            header.IsEmpty ? "an empty file" :
            header.StartsWith("GIF8"u8) ? "a GIF image" :
            header.Length >= 12 && header.StartsWith("RIFF"u8) && header[8..12].SequenceEqual("WEBP"u8) ? "a WebP image" :
            header.StartsWith("BM"u8) ? "a BMP image" :
            header.StartsWith(new byte[] { 0x49, 0x49, 0x2A, 0x00 }) || header.StartsWith(new byte[] { 0x4D, 0x4D, 0x00, 0x2A }) ? "a TIFF image" :
            "not an image this reads (its first bytes are " + Convert.ToHexString(header[..Math.Min(header.Length, 8)]) + ")";
        return $"must be a PNG or JPEG image, but it is {what}";
    }
}
