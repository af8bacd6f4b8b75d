using System.Diagnostics;
using BatchRender.Model.Autoencoders;
using BatchRender.Model.Quantization;
using BatchRender.Model.Schedulers;
using BatchRender.Model.TextEncoders;
using BatchRender.Model.Tokenizers;
using BatchRender.Model.Transformers;
using TorchSharp;
using static TorchSharp.torch;

namespace BatchRender.Model.Pipelines;

/// <summary>
/// Hunyuan-DiT text-to-image (diffusers' HunyuanDiTPipeline), plus img2img/inpainting for a non-inpainting model and
/// video frames. One instance holds the loaded components on one device and is reused for every render.
/// <para>
/// Flow per pass: tokenize and encode the prompts with both text encoders (negative prompts too when classifier-free
/// guidance is on) -> per-item Gaussian noise from the item's own seed -> for each timestep run the transformer on
/// [uncond; cond], guide, rescale, and step each item's own scheduler -> VAE decode -> PNG.
/// Items never share random state (own generator, own scheduler), so an item renders the same pixels alone or in a batch.
/// </para>
/// </summary>
public sealed class HunyuanDiTPipeline : IRenderPipeline
{
    /// <summary>Frames of a video denoised in one transformer pass (bounds memory for long clips; CFG doubles it).</summary>
    private const int VideoChunk = 16;

    private readonly SchedulerConfig _schedulerConfig;

    public HunyuanDiTPipeline(ModelComponents components, PipelineInfo info)
    {
        Components = components;
        _schedulerConfig = components.SchedulerConfig;
        Info = info;
    }

    public ModelComponents Components { get; }
    public PipelineInfo Info { get; }
    public Device Device => Components.Device;
    private HunyuanDiT2DModel Transformer => Components.Transformer;
    private AutoencoderKL Vae => Components.Vae;

    /// <summary>Loads a diffusers-layout model directory and applies the requested quantization.</summary>
    public static HunyuanDiTPipeline Load(PipelineLoadOptions options, Action<string>? warn = null)
    {
        if (options.Threads > 0) torch.set_num_threads(options.Threads);
        var device = ResolveDevice(options.Device);
        var components = ModelComponents.Load(options.ModelDirectory, device);

        var report = ModelQuantizer.Apply(components.Transformer, options.Quantization);
        if (report.Warning is { } w) warn?.Invoke(w);
        long quantizedBytes = report.QuantizedBytes, fp32Bytes = report.Fp32Bytes;
        if (options.QuantizeTextEncoders && report.AppliedMode == QuantizationMode.Int8Dynamic)
        {
            foreach (var encoder in new nn.Module[] { components.TextEncoder, components.TextEncoder2 })
            {
                var r = ModelQuantizer.Apply(encoder, QuantizationMode.Int8Dynamic, new QuantizationOptions { Include = QuantizationOptions.AllLinears });
                quantizedBytes += r.QuantizedBytes;
                fp32Bytes += r.Fp32Bytes;
            }
        }
        var info = new PipelineInfo(options.ModelDirectory, components.ModelHash, device.ToString(), report.AppliedMode, quantizedBytes, fp32Bytes);
        return new HunyuanDiTPipeline(components, info);
    }

    /// <summary>"auto" (CUDA when libtorch sees a GPU, else CPU), "cpu" or "cuda".</summary>
    public static Device ResolveDevice(string device) => device switch
    {
        "auto" => torch.cuda.is_available() ? CUDA : CPU,
        "cpu" => CPU,
        "cuda" => torch.cuda.is_available()
            ? CUDA
            : throw new InvalidOperationException("device 'cuda' requested but libtorch sees no CUDA device (is this the GPU build, -p:TorchBackend=cuda?)"),
        _ => throw new ArgumentException($"unknown device '{device}' (auto, cpu or cuda)", nameof(device)),
    };

    public IReadOnlyList<RenderResult> Render(IReadOnlyList<RenderRequest> batch, IProgress<RenderProgress>? progress = null,
                                              CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(batch);
        if (batch.Count == 0) return [];
        CheckBatch(batch);

        var results = new RenderResult?[batch.Count];
        using var noGrad = torch.no_grad();

        // Plain images share one pass; inpainting items share a pass per strength (it sets the first timestep);
        // each video is its own pass (its frames are the batch).
        var indexed = batch.Select((request, index) => (request, index)).ToList();
        var images = indexed.Where(x => x.request.Video is null && x.request.Inpaint is null).ToList();
        if (images.Count > 0) RenderImages(images, results, progress, cancellationToken);
        foreach (var group in indexed.Where(x => x.request.Inpaint is not null).GroupBy(x => x.request.Inpaint!.Strength))
            RenderImages(group.ToList(), results, progress, cancellationToken);
        foreach (var video in indexed.Where(x => x.request.Video is not null))
            results[video.index] = RenderVideo(video.request, video.index, progress, cancellationToken);
        return results.Select(r => r!).ToList();
    }

    private void CheckBatch(IReadOnlyList<RenderRequest> batch)
    {
        var first = batch[0];
        for (int i = 0; i < batch.Count; i++)
        {
            var r = batch[i];
            string at = $"batch[{i}]";
            if (string.IsNullOrWhiteSpace(r.Prompt)) throw new ArgumentException($"{at}.Prompt: must not be empty");
            if (r.Width != first.Width || r.Height != first.Height || r.Steps != first.Steps || r.Sampler != first.Sampler)
                throw new ArgumentException($"{at}: every item of a batch must share width, height, steps and sampler " +
                                            $"({r.Width}x{r.Height}, {r.Steps} steps, {r.Sampler} vs {first.Width}x{first.Height}, {first.Steps} steps, {first.Sampler})");
            foreach (var (value, name) in new[] { (r.Width, "Width"), (r.Height, "Height") })
                if (value < 64 || value > 2048 || value % 16 != 0)
                    throw new ArgumentException($"{at}.{name}: {value} must be a multiple of 16 between 64 and 2048");
            if (r.Steps is < 1 or > 1000) throw new ArgumentException($"{at}.Steps: {r.Steps} must be between 1 and 1000");
            if (r.GuidanceScale is < 0 or > 30 || double.IsNaN(r.GuidanceScale)) throw new ArgumentException($"{at}.GuidanceScale: {r.GuidanceScale} must be between 0 and 30");
            if (r.GuidanceRescale is < 0 or > 1 || double.IsNaN(r.GuidanceRescale)) throw new ArgumentException($"{at}.GuidanceRescale: {r.GuidanceRescale} must be between 0 and 1");
            if (r.Seed < 0) throw new ArgumentException($"{at}.Seed: {r.Seed} must not be negative");
            if (r.Video is not null && r.Inpaint is not null) throw new ArgumentException($"{at}: an item is a video or an inpainting, not both");
            if (r.Video is { } v && (v.Frames < 1 || v.Fps < 1 || v.MotionScale < 0 || double.IsNaN(v.MotionScale)))
                throw new ArgumentException($"{at}.Video: frames and fps must be positive and motionScale not negative");
            if (r.Inpaint is { } p && (!(p.Strength > 0) || p.Strength > 1))
                throw new ArgumentException($"{at}.Inpaint.Strength: {p.Strength} must be in (0, 1]");
        }
    }

    // ----- images and inpainting --------------------------------------------------------------------------------

    private void RenderImages(List<(RenderRequest request, int index)> items, RenderResult?[] results,
                              IProgress<RenderProgress>? progress, CancellationToken cancellationToken)
    {
        var first = items[0].request;
        int width = first.Width, height = first.Height;
        var requests = items.Select(x => x.request).ToList();

        var encodeClock = Stopwatch.StartNew();
        using var text = EncodePrompts(requests);
        var inpaint = first.Inpaint is null ? null : PrepareInpaint(requests, width, height);
        encodeClock.Stop();

        var denoiseClock = Stopwatch.StartNew();
        var generators = requests.Select(r => new Generator((ulong)r.Seed, Device)).ToList();
        var noise = torch.cat(generators.Select(g => torch.randn([1, Components.LatentChannels, height / VaeScale, width / VaeScale], generator: g, device: Device)).ToList(), 0);
        var latents = Denoise(requests, text, noise, framePhase: null, inpaint, generators,
                              step => { foreach (var (_, index) in items) progress?.Report(new RenderProgress(index, step, requests[0].Steps)); },
                              cancellationToken);
        denoiseClock.Stop();

        var decodeClock = Stopwatch.StartNew();
        var rgb = ImageCodec.ToRgbBytes(Vae.Decode(latents));
        if (inpaint is not null) PasteKnownPixels(rgb, inpaint);
        var pngs = rgb.Select(pixels => ImageCodec.EncodePng(pixels, width, height)).ToList();
        decodeClock.Stop();

        for (int i = 0; i < items.Count; i++)
            results[items[i].index] = new RenderResult
            {
                Png = pngs[i], Seed = requests[i].Seed,
                EncodeTime = encodeClock.Elapsed, DenoiseTime = denoiseClock.Elapsed, DecodeTime = decodeClock.Elapsed,
            };
        inpaint?.Dispose();
        foreach (var g in generators) g.Dispose();
    }

    /// <summary>Inputs of a non-inpainting model's inpainting: the encoded image, the latent repaint mask, the original pixels.</summary>
    private sealed class InpaintInputs : IDisposable
    {
        public required Tensor ImageLatents { get; init; }   // [B, C, h, w] scaled latents of the source images
        public required Tensor LatentMask { get; init; }     // [B, 1, h, w] 1 = repaint
        public required byte[][] OriginalRgb { get; init; }
        public required bool[][] PixelMask { get; init; }
        public required double Strength { get; init; }
        public void Dispose() { ImageLatents.Dispose(); LatentMask.Dispose(); }
    }

    private InpaintInputs PrepareInpaint(IReadOnlyList<RenderRequest> requests, int width, int height)
    {
        var rgb = new byte[requests.Count][];
        var masks = new bool[requests.Count][];
        for (int i = 0; i < requests.Count; i++)
        {
            var p = requests[i].Inpaint!;
            rgb[i] = ImageCodec.DecodeRgb(p.Image, width, height, $"batch item {i} inpaint image");
            masks[i] = ImageCodec.DecodeMask(p.Mask, width, height, $"batch item {i} inpaint mask");
        }
        using var scope = torch.NewDisposeScope();
        var images = torch.cat(rgb.Select(x => ImageCodec.ToTensor(x, width, height, Device)).ToList(), 0);      // [B, 3, H, W]
        var latents = Vae.Encode(images, generator: null, sample: false);                                           // mean: deterministic
        var pixelMask = torch.stack(masks.Select(m => torch.tensor(m.Select(v => v ? 1f : 0f).ToArray(), [1, height, width])).ToList(), 0).to(Device);
        // A latent cell is repainted when any pixel under it is: the known region never leaks into the repainted one.
        var latentMask = nn.functional.max_pool2d(pixelMask, VaeScale, VaeScale);                                  // [B, 1, h, w]
        return new InpaintInputs
        {
            ImageLatents = latents.MoveToOuterDisposeScope(), LatentMask = latentMask.MoveToOuterDisposeScope(),
            OriginalRgb = rgb, PixelMask = masks, Strength = requests[0].Inpaint!.Strength,
        };
    }

    /// <summary>Outside the mask the output is the input image, byte for byte.</summary>
    private static void PasteKnownPixels(byte[][] rgb, InpaintInputs inpaint)
    {
        for (int i = 0; i < rgb.Length; i++)
        {
            var mask = inpaint.PixelMask[i];
            for (int p = 0; p < mask.Length; p++)
                if (!mask[p])
                {
                    rgb[i][3 * p] = inpaint.OriginalRgb[i][3 * p];
                    rgb[i][3 * p + 1] = inpaint.OriginalRgb[i][3 * p + 1];
                    rgb[i][3 * p + 2] = inpaint.OriginalRgb[i][3 * p + 2];
                }
        }
    }

    // ----- video ------------------------------------------------------------------------------------------------

    private RenderResult RenderVideo(RenderRequest request, int index, IProgress<RenderProgress>? progress, CancellationToken cancellationToken)
    {
        var video = request.Video!;
        int width = request.Width, height = request.Height, frames = video.Frames;
        var latentShape = new long[] { 1, Components.LatentChannels, height / VaeScale, width / VaeScale };

        var encodeClock = Stopwatch.StartNew();
        using var text = EncodePrompts([request]);
        encodeClock.Stop();

        var denoiseClock = Stopwatch.StartNew();
        using var generator = new Generator((ulong)request.Seed, Device);
        using var baseNoise = torch.randn(latentShape, generator: generator, device: Device);
        // Frame-phase models: every frame starts from the same noise and is told where in the clip it is.
        // Others: a motion-scaled walk on the noise sphere between two seeded noises (spherical interpolation keeps
        // each frame's noise exactly Gaussian-sized, so every frame is an in-distribution sample).
        using var walkNoise = torch.randn(latentShape, generator: generator, device: Device);
        bool framePhaseModel = Transformer.Config.FramePhaseEmbedding;

        var rgbFrames = new List<byte[]>(frames);
        var decodeTime = TimeSpan.Zero;
        int totalSteps = request.Steps * ((frames + VideoChunk - 1) / VideoChunk), stepsDone = 0;
        for (int start = 0; start < frames; start += VideoChunk)
        {
            int count = Math.Min(VideoChunk, frames - start);
            var requests = Enumerable.Repeat(request, count).ToList();
            using var chunkScope = torch.NewDisposeScope();
            var positions = Enumerable.Range(start, count).Select(f => frames == 1 ? 0.0 : (double)f / (frames - 1)).ToArray();
            Tensor noise;
            Tensor? phase = null;
            if (framePhaseModel)
            {
                noise = baseNoise.expand(count, -1, -1, -1).contiguous();
                phase = torch.tensor(positions.Select(p => (float)Math.Clamp(0.5 + (p - 0.5) * video.MotionScale, 0, 1)).ToArray(), device: Device);
            }
            else
            {
                noise = torch.cat(positions.Select(p => Slerp(baseNoise, walkNoise, p * video.MotionScale * 0.25)).ToList(), 0);
            }
            // Stochastic samplers get the same per-step noise in every frame: one generator per frame, same seed.
            var generators = Enumerable.Range(0, count).Select(_ => new Generator((ulong)request.Seed + 1, Device)).ToList();
            var chunkText = text.Repeat(count);
            var latents = Denoise(requests, chunkText, noise, phase, inpaint: null, generators,
                                  _ => progress?.Report(new RenderProgress(index, Math.Min(++stepsDone, totalSteps), totalSteps)), cancellationToken);
            foreach (var g in generators) g.Dispose();
            chunkText.Dispose();

            var decodeClock = Stopwatch.StartNew();
            rgbFrames.AddRange(ImageCodec.ToRgbBytes(Vae.Decode(latents)));
            decodeTime += decodeClock.Elapsed;
        }
        denoiseClock.Stop();

        var encodeOutClock = Stopwatch.StartNew();
        var framePngs = rgbFrames.Select(rgb => ImageCodec.EncodePng(rgb, width, height)).ToList();
        var gif = ImageCodec.EncodeGif(rgbFrames, width, height, video.Fps);
        decodeTime += encodeOutClock.Elapsed;
        return new RenderResult
        {
            Png = framePngs[0], FramePngs = framePngs, PreviewGif = gif, Seed = request.Seed,
            EncodeTime = encodeClock.Elapsed, DenoiseTime = denoiseClock.Elapsed - decodeTime, DecodeTime = decodeTime,
        };
    }

    /// <summary>Spherical interpolation by angle theta (radians) from a towards b's orthogonal component.</summary>
    private static Tensor Slerp(Tensor a, Tensor b, double theta)
    {
        // Make b orthogonal to a with the same norm, then rotate a towards it.
        var aFlat = a.flatten();
        var bFlat = b.flatten();
        var orthogonal = bFlat - aFlat * (aFlat.dot(bFlat) / aFlat.dot(aFlat));
        orthogonal = orthogonal * (aFlat.norm() / orthogonal.norm());
        return (aFlat * Math.Cos(theta) + orthogonal * Math.Sin(theta)).reshape(a.shape);
    }

    // ----- the shared parts -------------------------------------------------------------------------------------

    private int VaeScale => Components.VaeScaleFactor;

    /// <summary>Both text encoders' states for every item: conditional, and unconditional (the negative prompt).</summary>
    private PromptEmbeddings EncodePrompts(IReadOnlyList<RenderRequest> requests)
    {
        using var scope = torch.NewDisposeScope();
        var texts = requests.Select(r => r.Prompt).Concat(requests.Select(r => r.NegativePrompt ?? "")).ToList();
        var (bertIds, bertMask) = Components.Tokenizer.EncodeBatch(texts, Device);
        var (t5Ids, t5Mask) = Components.Tokenizer2.EncodeBatch(texts, Device);
        var bert = Components.TextEncoder.forward(bertIds, bertMask);                                    // [2B, 77, 1024]
        var t5 = Components.TextEncoder2.forward(t5Ids, t5Mask);                                         // [2B, 256, 2048]
        int b = requests.Count;
        var embeddings = new PromptEmbeddings(
            Cond: new TextStates(bert[..b], bertMask[..b], t5[..b], t5Mask[..b]),
            Uncond: new TextStates(bert[b..], bertMask[b..], t5[b..], t5Mask[b..]));
        embeddings.MoveToOuterDisposeScope();
        return embeddings;
    }

    /// <summary>
    /// The denoising loop (HUNYUAN.md §4.5), from <paramref name="noise"/> to clean latents. CFG runs the transformer on
    /// [uncond; cond] and mixes per item with its own guidance scale; guidance rescale as diffusers; each item steps its
    /// own scheduler with its own generator. For inpainting the loop starts at the strength's timestep from the noised
    /// source latents and re-imposes the known region (noised to the next level) after every step.
    /// </summary>
    private Tensor Denoise(IReadOnlyList<RenderRequest> requests, PromptEmbeddings text, Tensor noise, Tensor? framePhase,
                           InpaintInputs? inpaint, IReadOnlyList<Generator> generators, Action<int> onStep,
                           CancellationToken cancellationToken)
    {
        int b = requests.Count;
        var first = requests[0];
        var schedulers = requests.Select(_ => SchedulerFactory.Create(first.Sampler, _schedulerConfig)).ToList();
        foreach (var s in schedulers) s.SetTimesteps(first.Steps);
        var timesteps = schedulers[0].Timesteps.ToList();
        if (inpaint is not null)
        {
            // diffusers' img2img: keep the last min(steps * strength, steps) timesteps.
            int keep = Math.Min((int)(first.Steps * inpaint.Strength), first.Steps);
            timesteps = timesteps.Skip(first.Steps - keep).ToList();
            if (timesteps.Count == 0) timesteps = [schedulers[0].Timesteps[^1]];
        }

        var latents = inpaint is null
            ? noise * schedulers[0].InitNoiseSigma
            : schedulers[0].AddNoise(inpaint.ImageLatents, noise, timesteps[0]);
        var guidance = torch.tensor(requests.Select(r => (float)r.GuidanceScale).ToArray(), device: Device).reshape(b, 1, 1, 1);
        var rescale = requests.Select(r => r.GuidanceRescale).ToArray();
        bool anyCfg = requests.Any(r => r.GuidanceScale > 1);
        var cfgItems = requests.Select(r => r.GuidanceScale > 1).ToArray();

        var (cos, sin) = Transformer.RotaryTables(first.Height, first.Width, VaeScale, Device);
        var textIn = anyCfg ? text.Uncond.Concat(text.Cond) : text.Cond;
        var phaseIn = framePhase is null ? null : anyCfg ? torch.cat([framePhase, framePhase], 0) : framePhase;
        var metaSize = Transformer.Config.UseStyleCondAndImageMetaSize
            ? torch.tensor(requests.Concat(anyCfg ? requests : []).SelectMany(r => new float[] { 1024, 1024, r.Height, r.Width, 0, 0 }).ToArray(), device: Device).reshape(-1, 6)
            : null;
        var style = Transformer.Config.UseStyleCondAndImageMetaSize
            ? torch.tensor(requests.Concat(anyCfg ? requests : []).Select(r => (long)r.Style).ToArray(), device: Device)
            : null;

        // The text side of every step (cross-attention keys and values, temb's text part) is computed once.
        using var prepared = Transformer.PrepareText(textIn.Bert, textIn.BertMask, textIn.T5, textIn.T5Mask, metaSize, style, phaseIn);
        for (int i = 0; i < timesteps.Count; i++)
        {
            cancellationToken.ThrowIfCancellationRequested();
            long t = timesteps[i];
            using var stepScope = torch.NewDisposeScope();
            var modelInput = schedulers[0].ScaleModelInput(anyCfg ? torch.cat([latents, latents], 0) : latents, t);
            var tBatch = torch.full(modelInput.shape[0], t, dtype: ScalarType.Float32, device: Device);
            var output = Transformer.forward(modelInput, tBatch, prepared, (cos, sin));
            var prediction = output[.., ..Components.LatentChannels];                                      // drop learned sigma
            Tensor guided;
            if (anyCfg)
            {
                var uncond = prediction[..b];
                var cond = prediction[b..];
                guided = uncond + guidance * (cond - uncond);
                var useCfg = torch.tensor(cfgItems, device: Device).reshape(b, 1, 1, 1);
                guided = torch.where(useCfg, guided, cond);
                if (rescale.Any(r => r > 0)) guided = RescaleGuidance(guided, cond, rescale);
            }
            else guided = prediction;

            var next = new List<Tensor>(b);
            for (int k = 0; k < b; k++)
                next.Add(schedulers[k].Step(guided[k..(k + 1)], t, latents[k..(k + 1)], generators[k]));
            var stepped = torch.cat(next, 0);
            if (inpaint is not null)
            {
                // Re-impose the known region at the noise level of the next timestep (clean at the end).
                var known = i + 1 < timesteps.Count
                    ? schedulers[0].AddNoise(inpaint.ImageLatents, noise, timesteps[i + 1])
                    : inpaint.ImageLatents;
                stepped = inpaint.LatentMask * stepped + (1 - inpaint.LatentMask) * known;
            }
            latents.Dispose();
            latents = stepped.MoveToOuterDisposeScope();
            onStep(i + 1);
        }
        guidance.Dispose();
        return latents;
    }

    /// <summary>diffusers' rescale_noise_cfg: pull the guided prediction's std back towards the conditional one's, per item.</summary>
    private static Tensor RescaleGuidance(Tensor guided, Tensor cond, double[] phi)
    {
        var dims = Enumerable.Range(1, (int)guided.ndim - 1).Select(d => (long)d).ToArray();
        var stdCond = cond.std(dims, keepdim: true);
        var stdGuided = guided.std(dims, keepdim: true);
        var rescaled = guided * (stdCond / stdGuided);
        var phiT = torch.tensor(phi.Select(p => (float)p).ToArray(), device: guided.device).reshape(-1, 1, 1, 1);
        return phiT * rescaled + (1 - phiT) * guided;
    }

    public void Dispose() => Components.Dispose();
}

/// <summary>Both text streams of a batch: BERT states and mask, mT5 states and mask.</summary>
internal sealed record TextStates(Tensor Bert, Tensor BertMask, Tensor T5, Tensor T5Mask) : IDisposable
{
    public TextStates Concat(TextStates other) => new(
        torch.cat([Bert, other.Bert], 0), torch.cat([BertMask, other.BertMask], 0),
        torch.cat([T5, other.T5], 0), torch.cat([T5Mask, other.T5Mask], 0));

    public TextStates Repeat(int count) => new(
        Bert.expand(count, -1, -1), BertMask.expand(count, -1), T5.expand(count, -1, -1), T5Mask.expand(count, -1));

    public void MoveToOuterDisposeScope()
    {
        Bert.MoveToOuterDisposeScope(); BertMask.MoveToOuterDisposeScope();
        T5.MoveToOuterDisposeScope(); T5Mask.MoveToOuterDisposeScope();
    }

    public void Dispose() { Bert.Dispose(); BertMask.Dispose(); T5.Dispose(); T5Mask.Dispose(); }
}

internal sealed record PromptEmbeddings(TextStates Cond, TextStates Uncond) : IDisposable
{
    public PromptEmbeddings Repeat(int count) => new(Cond.Repeat(count), Uncond.Repeat(count));
    public void MoveToOuterDisposeScope() { Cond.MoveToOuterDisposeScope(); Uncond.MoveToOuterDisposeScope(); }
    public void Dispose() { Cond.Dispose(); Uncond.Dispose(); }
}
