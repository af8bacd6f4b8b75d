using SixLabors.ImageSharp;
using SixLabors.ImageSharp.Formats.Gif;
using SixLabors.ImageSharp.Formats.Png;
using SixLabors.ImageSharp.PixelFormats;
using SixLabors.ImageSharp.Processing;
using TorchSharp;
using static TorchSharp.torch;

namespace BatchRender.Model.Pipelines;

/// <summary>Pixels between tensors and files: PNG and GIF out (ImageSharp), PNG/JPEG in.</summary>
public static class ImageCodec
{
    private static readonly PngEncoder Png = new() { ColorType = PngColorType.Rgb, BitDepth = PngBitDepth.Bit8 };

    /// <summary>Decoder output [B, 3, H, W] in [-1, 1] -> one RGB24 byte array per image (H x W x 3, row-major).</summary>
    public static byte[][] ToRgbBytes(Tensor images)
    {
        using var scope = torch.NewDisposeScope();
        var pixels = (images.to(ScalarType.Float32) / 2 + 0.5).clamp(0, 1).mul(255).round()
                     .to(ScalarType.Byte).permute(0, 2, 3, 1).contiguous().cpu();          // [B, H, W, 3]
        long b = pixels.shape[0];
        var result = new byte[b][];
        for (long i = 0; i < b; i++) result[i] = pixels[i].data<byte>().ToArray();
        return result;
    }

    public static byte[] EncodePng(byte[] rgb, int width, int height)
    {
        using var image = Image.LoadPixelData<Rgb24>(rgb, width, height);
        using var stream = new MemoryStream();
        image.Save(stream, Png);
        return stream.ToArray();
    }

    /// <summary>An animated GIF that loops forever, one frame every 1/fps seconds.</summary>
    public static byte[] EncodeGif(IReadOnlyList<byte[]> framesRgb, int width, int height, int fps)
    {
        if (framesRgb.Count == 0) throw new ArgumentException("a GIF needs at least one frame", nameof(framesRgb));
        int delay = Math.Max(2, (int)Math.Round(100.0 / fps));                               // GIF delays are in 1/100 s
        using var gif = Image.LoadPixelData<Rgb24>(framesRgb[0], width, height);
        gif.Metadata.GetGifMetadata().RepeatCount = 0;
        gif.Frames.RootFrame.Metadata.GetGifMetadata().FrameDelay = delay;
        foreach (var rgb in framesRgb.Skip(1))
        {
            using var frame = Image.LoadPixelData<Rgb24>(rgb, width, height);
            frame.Frames.RootFrame.Metadata.GetGifMetadata().FrameDelay = delay;
            gif.Frames.AddFrame(frame.Frames.RootFrame);
        }
        using var stream = new MemoryStream();
        gif.Save(stream, new GifEncoder { ColorTableMode = GifColorTableMode.Local });
        return stream.ToArray();
    }

    /// <summary>A PNG or JPEG resized (bicubic) to width x height, as RGB24 bytes.</summary>
    public static byte[] DecodeRgb(byte[] encoded, int width, int height, string what)
    {
        using var image = Load<Rgb24>(encoded, what);
        if (image.Width != width || image.Height != height)
            image.Mutate(x => x.Resize(new ResizeOptions { Size = new SixLabors.ImageSharp.Size(width, height), Mode = ResizeMode.Stretch, Sampler = KnownResamplers.Bicubic }));
        var rgb = new byte[width * height * 3];
        image.CopyPixelDataTo(rgb);
        return rgb;
    }

    /// <summary>A mask resized (nearest) to width x height and binarised: true = repaint (luminance ≥ 128).</summary>
    public static bool[] DecodeMask(byte[] encoded, int width, int height, string what)
    {
        using var image = Load<L8>(encoded, what);
        if (image.Width != width || image.Height != height)
            image.Mutate(x => x.Resize(new ResizeOptions { Size = new SixLabors.ImageSharp.Size(width, height), Mode = ResizeMode.Stretch, Sampler = KnownResamplers.NearestNeighbor }));
        var luminance = new byte[width * height];
        image.CopyPixelDataTo(luminance);
        return luminance.Select(v => v >= 128).ToArray();
    }

    /// <summary>RGB24 bytes -> [1, 3, H, W] in [-1, 1].</summary>
    public static Tensor ToTensor(byte[] rgb, int width, int height, Device device) =>
        torch.tensor(rgb, [height, width, 3], dtype: ScalarType.Byte).to(device)
             .permute(2, 0, 1).unsqueeze(0).to(ScalarType.Float32).div(127.5).sub(1.0);

    private static Image<TPixel> Load<TPixel>(byte[] encoded, string what) where TPixel : unmanaged, IPixel<TPixel>
    {
        try { return Image.Load<TPixel>(encoded); }
        catch (Exception e) when (e is UnknownImageFormatException or InvalidImageContentException or NotSupportedException)
        {
            throw new InvalidDataException($"{what}: not a readable PNG or JPEG image ({e.Message})", e);
        }
    }
}
