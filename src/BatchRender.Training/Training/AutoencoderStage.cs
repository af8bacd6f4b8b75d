using BatchRender.Model.Autoencoders;
using BatchRender.Training.Dataset;
using TorchSharp;
using static TorchSharp.torch;

namespace BatchRender.Training.Training;

/// <summary>Stage b: the small AutoencoderKL (f = 8) on dataset images: L1 + L2 reconstruction of a posterior sample plus
/// a tiny KL term (keeps the latent space smooth without blurring colours or edges), then its reconstruction PSNR on
/// images it never trained on, over the whole image and over the objects alone.
/// Objects cover a few percent of a scene, so an unweighted loss is met by reproducing the background and smearing the
/// objects away, which no diffusion model can then put back: object pixels weigh <c>1 + objectWeight</c>, and half the
/// crops are centred on an object.</summary>
internal static class AutoencoderStage
{
    public const double KlWeight = 1e-6;
    /// <summary>A pixel is an object pixel when its colour is this far (in [-1, 1] units, Euclidean over RGB) from the
    /// image's median colour, which is the background's (objects never cover half of a scene).</summary>
    public const float ObjectDistance = 0.3f;

    /// <summary>[B, 3, H, W] images in [-1, 1] -> [B, 1, H, W] 1 on object pixels, 0 on the background.</summary>
    public static Tensor ObjectMask(Tensor images)
    {
        using var scope = NewDisposeScope();
        var flat = images.flatten(2);                                                             // [B, 3, H*W]
        var background = flat.kthvalue(flat.shape[2] / 2 + 1, 2).values.unsqueeze(-1).unsqueeze(-1);   // median [B, 3, 1, 1]
        var distance = (images - background).pow(2).sum(1, keepdim: true).sqrt();                // [B, 1, H, W]
        return (distance > ObjectDistance).to(ScalarType.Float32).MoveToOuterDisposeScope();
    }
    /// <summary>Example indices from here on are never drawn in training (validation images for the PSNR).</summary>
    public const long ValidationIndexBase = 1L << 40;

    /// <summary>Step s's images: examples s x B .. s x B + B - 1 of the stream, as [B, 3, S, S] in [-1, 1].</summary>
    public static Tensor Images(DemoDataset dataset, long firstIndex, int count)
    {
        int size = dataset.Options.ImageSize, plane = 3 * size * size;
        var buffer = new float[count * plane];
        for (int i = 0; i < count; i++)
            dataset.RenderChw(dataset.GetExample(firstIndex + i), buffer.AsSpan(i * plane, plane));
        return tensor(buffer).reshape(count, 3, size, size);
    }

    /// <summary>Step s's images cut to <paramref name="cropSize"/> squares (seeded by step): [B, 3, C, C], half of them
    /// centred on a random object pixel, the rest anywhere, with their object masks ([B, 1, C, C], found on the whole
    /// image, where the background is the majority). The autoencoder is fully convolutional, so it trains on crops at
    /// a fraction of the cost of whole images and then encodes whole ones.</summary>
    public static (Tensor Images, Tensor ObjectMasks) Crops(DemoDataset dataset, long firstIndex, int count, int cropSize, int seed)
    {
        int size = dataset.Options.ImageSize;
        var images = Images(dataset, firstIndex, count);
        var masks = ObjectMask(images);
        if (cropSize >= size) return (images, masks);
        var random = new Random(SeedMixer.Mix(seed, firstIndex, 12));
        var crops = new Tensor[count];
        var maskCrops = new Tensor[count];
        for (int i = 0; i < count; i++)
        {
            long top = random.Next(size - cropSize + 1), left = random.Next(size - cropSize + 1);
            if (random.Next(2) == 0)
            {
                using var objectPixels = masks[i, 0].nonzero();                                 // [P, 2] (row, column)
                if (objectPixels.shape[0] > 0)
                {
                    long p = random.NextInt64(objectPixels.shape[0]);
                    long row = objectPixels[p, 0].item<long>(), column = objectPixels[p, 1].item<long>();
                    top = Math.Clamp(row - cropSize / 2, 0, size - cropSize);
                    left = Math.Clamp(column - cropSize / 2, 0, size - cropSize);
                }
            }
            crops[i] = images[i, .., TensorIndex.Slice(top, top + cropSize), TensorIndex.Slice(left, left + cropSize)];
            maskCrops[i] = masks[i, .., TensorIndex.Slice(top, top + cropSize), TensorIndex.Slice(left, left + cropSize)];
        }
        return (stack(crops), stack(maskCrops));
    }

    /// <param name="cropSize">Train on random squares of this size (a multiple of the VAE's factor); the image size
    /// trains on whole images.</param>
    /// <param name="objectWeight">Extra weight of object pixels in the reconstruction loss (0: every pixel alike).</param>
    public static Func<int, Tensor> Loss(AutoencoderKL vae, DemoDataset dataset, int batchSize, int cropSize, int seed, double objectWeight) => step =>
    {
        var (images, objectMasks) = Crops(dataset, (long)step * batchSize, batchSize, cropSize, seed);
        using var generator = new Generator((ulong)SeedMixer.Mix(seed, step, 11));
        var (mean, logVar) = vae.EncodeDistribution(images);
        var z = mean + (0.5 * logVar).exp() * randn(mean.shape, generator: generator);
        var reconstruction = vae.Decode(z);                                                     // scaling_factor is 1 while training
        var error = reconstruction - images;
        var weight = 1 + objectWeight * objectMasks;                                            // [B, 1, C, C]
        var pixels = weight.sum() * images.shape[1];
        var kl = 0.5 * (mean.pow(2) + logVar.exp() - 1 - logVar).sum(dim: [1, 2, 3]).mean();
        return (weight * error.abs()).sum() / pixels + (weight * error.pow(2)).sum() / pixels + KlWeight * kl;
    };

    /// <summary>Peak signal-to-noise ratio (8-bit pixels) of Decode(Encode(x)) through the posterior mean, over whole
    /// images and over their object pixels alone (<see cref="ObjectMask"/> of the originals).</summary>
    public static (double Image, double Objects) ReconstructionPsnr(AutoencoderKL vae, DemoDataset dataset, int images)
    {
        using var scope = NewDisposeScope();
        using var _ = no_grad();
        vae.eval();
        double squaredError = 0, objectSquaredError = 0, objectValues = 0;
        for (int start = 0; start < images; start += 8)
        {
            int count = Math.Min(8, images - start);
            var x = Images(dataset, ValidationIndexBase + start, count);
            var y = vae.forward(x).clamp(-1, 1);
            var squared = ((y - x) * 127.5).round().pow(2);
            var mask = ObjectMask(x);
            squaredError += squared.sum().item<float>();
            objectSquaredError += (squared * mask).sum().item<float>();
            objectValues += mask.sum().item<float>() * 3;
        }
        int size = dataset.Options.ImageSize;
        return (Psnr(squaredError / ((double)images * 3 * size * size)), Psnr(objectSquaredError / Math.Max(objectValues, 1)));
    }

    private static double Psnr(double mse) => 10 * Math.Log10(255.0 * 255.0 / Math.Max(mse, 1e-10));
}

/// <summary>Stage b2: latents of the first N examples of the stream (posterior means, unscaled), encoded once by the
/// trained VAE so the diffusion stage never runs the encoder, with each latent's object cells (an
/// <see cref="AutoencoderStage.ObjectMask"/> pooled to the latent grid: 1 where any pixel of the cell is an object's), which
/// weight the diffusion loss. Saved in the work folder for resume.</summary>
internal sealed class LatentCache
{
    /// <summary>Written first in the file: a cache of an older layout (no object cells) is rebuilt, not misread.</summary>
    private const string FormatVersion = "latents+objects/2";

    private LatentCache(float[] latents, float[] objectCells, int count, long[] shape)
    {
        Latents = latents;
        ObjectCells = objectCells;
        Count = count;
        Shape = shape;
    }

    public float[] Latents { get; }
    /// <summary>[N, h, w]: 1 on latent cells that hold object pixels, 0 on the background.</summary>
    public float[] ObjectCells { get; }
    public int Count { get; }
    /// <summary>[C, h, w] of one latent.</summary>
    public long[] Shape { get; }
    private int Stride => (int)(Shape[0] * Shape[1] * Shape[2]);
    private int CellStride => (int)(Shape[1] * Shape[2]);

    /// <summary>1 / std of the cached latents: the scaling factor that gives the diffusion model unit-variance inputs.</summary>
    public double ScalingFactor()
    {
        double sum = 0, sumSquares = 0;
        foreach (var v in Latents) { sum += v; sumSquares += (double)v * v; }
        double mean = sum / Latents.Length;
        return 1.0 / Math.Sqrt(sumSquares / Latents.Length - mean * mean);
    }

    /// <summary>The latents at the given indices, multiplied by <paramref name="scale"/>: [B, C, h, w].</summary>
    public Tensor Batch(IReadOnlyList<int> indices, double scale) => Gather(Latents, Stride, indices, Shape) * scale;

    /// <summary>The object cells of the latents at the given indices: [B, 1, h, w].</summary>
    public Tensor ObjectCellBatch(IReadOnlyList<int> indices) => Gather(ObjectCells, CellStride, indices, [1, Shape[1], Shape[2]]);

    private static Tensor Gather(float[] source, int stride, IReadOnlyList<int> indices, long[] shape)
    {
        var buffer = new float[indices.Count * stride];
        for (int i = 0; i < indices.Count; i++) Array.Copy(source, (long)indices[i] * stride, buffer, (long)i * stride, stride);
        return tensor(buffer).reshape([indices.Count, .. shape]);
    }

    public static LatentCache Build(AutoencoderKL vae, DemoDataset dataset, int count, IProgress<TrainingProgress>? progress, CancellationToken ct)
    {
        vae.eval();
        int size = dataset.Options.ImageSize, f = vae.ScaleFactor;
        long[] shape = [vae.Config.LatentChannels, size / f, size / f];
        int stride = (int)(shape[0] * shape[1] * shape[2]), cellStride = (int)(shape[1] * shape[2]);
        var latents = new float[(long)count * stride];
        var objectCells = new float[(long)count * cellStride];
        var clock = System.Diagnostics.Stopwatch.StartNew();
        const int batch = 16;
        for (int start = 0; start < count; start += batch)
        {
            ct.ThrowIfCancellationRequested();
            using var scope = NewDisposeScope();
            using var _ = no_grad();
            int n = Math.Min(batch, count - start);
            var images = AutoencoderStage.Images(dataset, start, n);
            var (mean, _) = vae.EncodeDistribution(images);
            mean.contiguous().data<float>().CopyTo(latents, start * stride);
            var cells = nn.functional.max_pool2d(AutoencoderStage.ObjectMask(images), f, f);      // [n, 1, h, w]
            cells.contiguous().data<float>().CopyTo(objectCells, start * cellStride);
            double rate = (start + n) / clock.Elapsed.TotalSeconds;
            progress?.Report(new TrainingProgress("latents", start + n, count, null, rate, clock.Elapsed, TimeSpan.FromSeconds((count - start - n) / rate)));
        }
        return new LatentCache(latents, objectCells, count, shape);
    }

    public void Save(string path, string fingerprint)
    {
        Directory.CreateDirectory(Path.GetDirectoryName(Path.GetFullPath(path))!);
        using var writer = new BinaryWriter(File.Create(path + ".saving"));
        writer.Write(FormatVersion);
        writer.Write(fingerprint);
        writer.Write(Count);
        foreach (var d in Shape) writer.Write(d);
        writer.Write(System.Runtime.InteropServices.MemoryMarshal.AsBytes(Latents.AsSpan()));
        writer.Write(System.Runtime.InteropServices.MemoryMarshal.AsBytes(ObjectCells.AsSpan()));
        writer.Close();
        File.Move(path + ".saving", path, overwrite: true);
    }

    /// <summary>The saved cache, or null when there is none, it has an older layout, or it was built by another VAE /
    /// dataset (fingerprint).</summary>
    public static LatentCache? TryLoad(string path, string fingerprint)
    {
        if (!File.Exists(path)) return null;
        using var reader = new BinaryReader(File.OpenRead(path));
        if (reader.ReadString() != FormatVersion || reader.ReadString() != fingerprint) return null;
        int count = reader.ReadInt32();
        long[] shape = [reader.ReadInt64(), reader.ReadInt64(), reader.ReadInt64()];
        var latents = new float[count * shape[0] * shape[1] * shape[2]];
        var objectCells = new float[count * shape[1] * shape[2]];
        reader.BaseStream.ReadExactly(System.Runtime.InteropServices.MemoryMarshal.AsBytes(latents.AsSpan()));
        reader.BaseStream.ReadExactly(System.Runtime.InteropServices.MemoryMarshal.AsBytes(objectCells.AsSpan()));
        return new LatentCache(latents, objectCells, count, shape);
    }
}
