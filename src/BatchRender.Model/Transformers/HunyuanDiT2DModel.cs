using BatchRender.Model.Attention;
using BatchRender.Model.Configuration;
using BatchRender.Model.Embeddings;
using BatchRender.Model.Loading;
using BatchRender.Model.Normalization;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace BatchRender.Model.Transformers;

/// <summary>
/// Hunyuan-DiT (diffusers HunyuanDiT2DModel): a DiT over 2x2 latent patches with 2D RoPE, text cross-attention over
/// BERT (77 x 1024) ++ projected mT5 (256 x 2048 -> 1024) tokens, a pooled-T5 + timestep conditioning vector, and long
/// skip connections from the first half of the blocks into the second (U-ViT style, LIFO). Parameter names are
/// diffusers' state-dict keys. Output: [B, 2 * in_channels, H, W]; the first in_channels are the prediction, the rest the
/// learned variance (discarded by the samplers).
/// </summary>
public sealed class HunyuanDiT2DModel : nn.Module
{
    public PixArtAlphaTextProjection text_embedder;
    public Parameter text_embedding_padding;
    public PatchEmbed pos_embed;
    public HunyuanCombinedTimestepTextSizeStyleEmbedding time_extra_emb;
    /// <summary>Extension (config frame_phase_token): the frame phase as one more cross-attention context token.</summary>
    public TimestepEmbedding? frame_phase_token_embedder;
    public ModuleList<HunyuanDiTBlock> blocks;
    public AdaLayerNormContinuous norm_out;
    public nn.Module<Tensor, Tensor> proj_out;

    public HunyuanDiTConfig Config { get; }

    /// <summary>Builds the model with freshly initialised weights on <paramref name="device"/> (use "meta" to build without memory).</summary>
    public HunyuanDiT2DModel(HunyuanDiTConfig config, Device? device = null, ScalarType? dtype = null)
        : base(nameof(HunyuanDiT2DModel))
    {
        config.Validate();
        Config = config;
        int inner = config.InnerDim;
        text_embedder = new PixArtAlphaTextProjection(config.CrossAttentionDimT5, config.CrossAttentionDimT5 * 4L, config.CrossAttentionDim, device, dtype);
        text_embedding_padding = new Parameter(torch.randn([config.TextLen + config.TextLenT5, config.CrossAttentionDim], dtype: dtype, device: device));
        pos_embed = new PatchEmbed(config.PatchSize, config.InChannels, config.HiddenSize, device, dtype);
        time_extra_emb = new HunyuanCombinedTimestepTextSizeStyleEmbedding(
            config.HiddenSize, config.PooledProjectionDim, config.TextLenT5, config.CrossAttentionDimT5,
            config.UseStyleCondAndImageMetaSize, config.FramePhaseEmbedding, device, dtype);
        if (config.FramePhaseToken)
            frame_phase_token_embedder = new TimestepEmbedding(
                HunyuanCombinedTimestepTextSizeStyleEmbedding.SinusoidDim + (config.FramePhaseTokenText ? config.PooledProjectionDim : 0),
                config.CrossAttentionDim, device, dtype);
        blocks = nn.ModuleList(Enumerable.Range(0, config.NumLayers).Select(layer => new HunyuanDiTBlock(
            inner, config.NumAttentionHeads, config.CrossAttentionDim, config.FeedForwardInnerDim, config.ActivationFn,
            skip: layer > config.NumLayers / 2, device: device, dtype: dtype)).ToArray());
        norm_out = new AdaLayerNormContinuous(inner, inner, elementwiseAffine: false, eps: 1e-6, device, dtype);
        proj_out = nn.Linear(inner, (long)config.PatchSize * config.PatchSize * config.OutChannels, hasBias: true, device: device, dtype: dtype);
        RegisterComponents();
    }

    /// <summary>Reads config.json of a diffusers transformer/ folder, builds the model on the device in <paramref name="dtype"/> and
    /// loads its weights strictly (stored fp32/fp16/bf16 converted); returns it in eval mode.</summary>
    public static HunyuanDiT2DModel FromPretrained(string componentDirectory, Device? device = null, ScalarType dtype = ScalarType.Float32)
    {
        var config = HunyuanDiTConfig.Load(componentDirectory);
        // Check names and shapes against a meta-device copy first: a wrong checkpoint fails before 6 GB are allocated.
        using (var shapeOnly = new HunyuanDiT2DModel(config, torch.device("meta")))
        {
            var problems = DiffusersComponent.CheckStateDict(shapeOnly, componentDirectory);
            if (problems.Count > 0) throw new WeightLoadException(componentDirectory, problems);
        }
        var model = new HunyuanDiT2DModel(config, device, dtype);
        DiffusersComponent.LoadStateDict(model, componentDirectory);
        model.eval();
        return model;
    }

    /// <summary>Writes config.json + diffusion_pytorch_model.safetensors (diffusers layout).</summary>
    public void SavePretrained(string componentDirectory, ScalarType? dtype = null)
        => DiffusersComponent.Save(this, componentDirectory, Config.ToJsonObject(), dtype: dtype);

    /// <summary>The dtype of the weights (activations follow it).</summary>
    public ScalarType DType => text_embedding_padding.dtype;

    /// <summary>RoPE tables for an image of height x width pixels with this model's head dim and patch size.</summary>
    public (Tensor Cos, Tensor Sin) RotaryTables(int height, int width, int vaeScaleFactor = 8, Device? device = null)
        => HunyuanRotaryEmbedding.RotaryTables(height, width, Config.AttentionHeadDim, Config.PatchSize, vaeScaleFactor, device);

    /// <summary>Static form for callers without a model instance (see <see cref="HunyuanRotaryEmbedding.RotaryTables"/>).</summary>
    public static (Tensor Cos, Tensor Sin) RotaryTables(int height, int width, int headDim, int patchSize = 2, int vaeScaleFactor = 8,
                                                        Device? device = null)
        => HunyuanRotaryEmbedding.RotaryTables(height, width, headDim, patchSize, vaeScaleFactor, device);

    /// <summary>Indices of the blocks that push their output for a later long skip: 0 .. num_layers/2 - 2.</summary>
    public static bool PushesSkip(int layer, int numLayers) => layer < numLayers / 2 - 1;
    /// <summary>Blocks that pop a skip (and own skip_norm/skip_linear): num_layers/2 + 1 .. num_layers - 1.</summary>
    public static bool PopsSkip(int layer, int numLayers) => layer > numLayers / 2;

    /// <param name="x">latents [B, in_channels, H, W], H and W multiples of patch_size</param>
    /// <param name="timestep">[B] (a 0-d tensor is broadcast to B)</param>
    /// <param name="bertStates">[B, text_len, cross_attention_dim]</param>
    /// <param name="bertMask">[B, text_len], 1 = token, 0 = padding</param>
    /// <param name="t5States">[B, text_len_t5, cross_attention_dim_t5]</param>
    /// <param name="t5Mask">[B, text_len_t5]</param>
    /// <param name="rope">(cos, sin), each [(H/p) * (W/p), attention_head_dim]</param>
    /// <param name="imageMetaSize">[B, 6] (original h, w, target h, w, crop top, left); required when the config uses it</param>
    /// <param name="style">[B] int64 style ids; zeros when omitted (models with the style condition)</param>
    /// <param name="framePhase">[B] in [0, 1] (frame-phase models; zeros when omitted)</param>
    /// <returns>[B, out_channels, H, W]</returns>
    public Tensor forward(Tensor x, Tensor timestep, Tensor bertStates, Tensor bertMask, Tensor t5States, Tensor t5Mask,
                          (Tensor Cos, Tensor Sin) rope, Tensor? imageMetaSize = null, Tensor? style = null, Tensor? framePhase = null)
    {
        if (x.ndim != 4) throw new ArgumentException($"x must be [B, C, H, W], got {Shape(x)}", nameof(x));
        using var text = PrepareText(bertStates, bertMask, t5States, t5Mask, imageMetaSize, style, framePhase);
        if (text.Batch != x.shape[0])
            throw new ArgumentException($"the text is for a batch of {text.Batch}, x is a batch of {x.shape[0]}", nameof(x));
        return forward(x, timestep, text, rope);
    }

    /// <summary>
    /// What the transformer derives from the text and the other step-invariant conditions (image meta size, style, frame
    /// phase): the cross-attention context's keys and values of every block and the non-timestep part of temb. A render
    /// prepares it once and runs every denoising step on it (<see cref="forward(Tensor, Tensor, PreparedText, ValueTuple{Tensor, Tensor})"/>).
    /// Arguments as for the full forward.
    /// </summary>
    public PreparedText PrepareText(Tensor bertStates, Tensor bertMask, Tensor t5States, Tensor t5Mask,
                                    Tensor? imageMetaSize = null, Tensor? style = null, Tensor? framePhase = null)
    {
        var c = Config;
        if (bertStates.ndim != 3) throw new ArgumentException($"bertStates must be [B, {c.TextLen}, {c.CrossAttentionDim}], got {Shape(bertStates)}", nameof(bertStates));
        long b = bertStates.shape[0];
        Expect(bertStates, nameof(bertStates), b, c.TextLen, c.CrossAttentionDim);
        Expect(bertMask, nameof(bertMask), b, c.TextLen);
        Expect(t5States, nameof(t5States), b, c.TextLenT5, c.CrossAttentionDimT5);
        Expect(t5Mask, nameof(t5Mask), b, c.TextLenT5);
        if (c.UseStyleCondAndImageMetaSize)
        {
            if (imageMetaSize is null) throw new ArgumentException("this model (use_style_cond_and_image_meta_size) needs imageMetaSize [B, 6]", nameof(imageMetaSize));
            Expect(imageMetaSize, nameof(imageMetaSize), b, 6);
            if (style is not null) Expect(style, nameof(style), b);
        }
        if (framePhase is not null)
        {
            if (!c.FramePhaseEmbedding) throw new ArgumentException("this model has no frame-phase condition (config frame_phase_embedding is off)", nameof(framePhase));
            Expect(framePhase, nameof(framePhase), b);
        }

        using var scope = torch.NewDisposeScope();
        var dtype = DType;
        var device = bertStates.device;
        if (c.UseStyleCondAndImageMetaSize)
            style = style?.to(ScalarType.Int64) ?? torch.zeros(b, dtype: ScalarType.Int64, device: device);
        if (c.FramePhaseEmbedding)
            framePhase ??= torch.zeros(b, dtype: ScalarType.Float32, device: device);
        var pooled = time_extra_emb.pooler.call(t5States.to(dtype));                                                 // [B, P]
        var stepInvariant = time_extra_emb.StepInvariant(pooled, imageMetaSize, style, dtype, framePhase);            // [B, D]
        var context = TextSequence(bertStates, bertMask, t5States, t5Mask);                                          // [B, L, Dc]
        if (frame_phase_token_embedder is not null)
            context = torch.cat([context, FramePhaseToken(framePhase!, pooled, dtype)], 1);                           // [B, L + 1, Dc]
        var keyValues = blocks.Select(block => block.attn2.ProjectText(context)).ToList();                            // per block [B, H, L(+1), hd] x 2
        stepInvariant.MoveToOuterDisposeScope();
        foreach (var kv in keyValues) { kv.Key.MoveToOuterDisposeScope(); kv.Value.MoveToOuterDisposeScope(); }
        return new PreparedText(b, stepInvariant, keyValues);
    }

    /// <summary>One denoising step on a prepared text: x, timestep and rope as for the full forward.</summary>
    /// <returns>[B, out_channels, H, W]</returns>
    public Tensor forward(Tensor x, Tensor timestep, PreparedText text, (Tensor Cos, Tensor Sin) rope) =>
        Forward(x, timestep, text, rope, featureBlock: -1).Output;

    /// <summary>
    /// One denoising step that also returns the token states after block <paramref name="featureBlock"/>, for
    /// training-time heads that read what the network has understood at each position (the output is the same as
    /// <see cref="forward(Tensor, Tensor, PreparedText, ValueTuple{Tensor, Tensor})"/>'s).
    /// </summary>
    /// <returns>the output [B, out_channels, H, W] and the features [B, (H/p) * (W/p), hidden]</returns>
    public (Tensor Output, Tensor Features) ForwardWithFeatures(Tensor x, Tensor timestep, PreparedText text, (Tensor Cos, Tensor Sin) rope, int featureBlock)
    {
        if (featureBlock < 0 || featureBlock >= Config.NumLayers)
            throw new ArgumentOutOfRangeException(nameof(featureBlock), featureBlock, $"the model has blocks 0 to {Config.NumLayers - 1}");
        var (output, features) = Forward(x, timestep, text, rope, featureBlock);
        return (output, features!);
    }

    private (Tensor Output, Tensor? Features) Forward(Tensor x, Tensor timestep, PreparedText text, (Tensor Cos, Tensor Sin) rope, int featureBlock)
    {
        var c = Config;
        if (x.ndim != 4) throw new ArgumentException($"x must be [B, C, H, W], got {Shape(x)}", nameof(x));
        long b = x.shape[0], height = x.shape[2], width = x.shape[3];
        int p = c.PatchSize;
        if (x.shape[1] != c.InChannels) throw new ArgumentException($"x has {x.shape[1]} channels, the model takes {c.InChannels}", nameof(x));
        if (height % p != 0 || width % p != 0 || height == 0 || width == 0)
            throw new ArgumentException($"latent size {height}x{width} must be a positive multiple of patch_size {p}", nameof(x));
        if (text.Batch != b || text.CrossAttention.Count != c.NumLayers)
            throw new ArgumentException($"the prepared text is for a batch of {text.Batch} and {text.CrossAttention.Count} blocks; x is a batch of {b}, the model has {c.NumLayers}", nameof(text));
        long h = height / p, w = width / p;
        if (timestep.ndim == 0) timestep = timestep.expand(b);
        Expect(timestep, nameof(timestep), b);
        Expect(rope.Cos, "rope.cos", h * w, c.AttentionHeadDim);
        Expect(rope.Sin, "rope.sin", h * w, c.AttentionHeadDim);

        using var scope = torch.NewDisposeScope();
        var dtype = DType;
        var device = x.device;
        var hidden = pos_embed.call(x.to(dtype));                                                   // [B, N, D]
        var temb = time_extra_emb.WithTimestep(timestep, text.StepInvariantEmbedding, dtype);       // [B, D]

        var cosSin = (rope.Cos.to(ScalarType.Float32).to(device), rope.Sin.to(ScalarType.Float32).to(device));
        var skips = new Stack<Tensor>();
        Tensor? features = null;
        for (int layer = 0; layer < c.NumLayers; layer++)
        {
            var skip = PopsSkip(layer, c.NumLayers) ? skips.Pop() : null;
            hidden = blocks[layer].forward(hidden, text.CrossAttention[layer], temb, cosSin, skip);
            if (PushesSkip(layer, c.NumLayers)) skips.Push(hidden);
            if (layer == featureBlock) features = hidden;                                           // [B, N, D]
        }

        hidden = norm_out.forward(hidden, temb.to(ScalarType.Float32));
        hidden = proj_out.call(hidden);                                                             // [B, N, p*p*out]
        var output = Unpatchify(hidden, h, w, p);
        return (output.MoveToOuterDisposeScope(), features?.MoveToOuterDisposeScope());
    }

    /// <summary>Per-token values back onto the latent grid: [B, h * w, p*p*C] (tokens row by row, as the patch embedding
    /// numbers them) -> [B, C, h * p, w * p], each token's values on the p x p cells it covers.</summary>
    public static Tensor Unpatchify(Tensor tokens, long h, long w, int p)
    {
        long b = tokens.shape[0], channels = tokens.shape[2] / (p * p);
        return tokens.reshape(b, h, w, p, p, channels)
                     .permute(0, 5, 1, 3, 2, 4)                                                     // n h w p q c -> n c h p w q
                     .reshape(b, channels, h * p, w * p);
    }

    /// <summary>
    /// The cross-attention context: BERT states ++ text_embedder(T5 states) along the sequence, with every masked-out position
    /// replaced by its learned text_embedding_padding row (no attention mask is used afterwards). [B, text_len + text_len_t5, Dc].
    /// </summary>
    public Tensor TextSequence(Tensor bertStates, Tensor bertMask, Tensor t5States, Tensor t5Mask)
    {
        using var scope = torch.NewDisposeScope();
        var dtype = DType;
        var t5Projected = text_embedder.call(t5States.to(dtype));                                  // [B, L_t5, Dc]
        var text = torch.cat([bertStates.to(dtype), t5Projected], 1);                              // [B, L, Dc]
        var mask = torch.cat([bertMask, t5Mask], -1).to(ScalarType.Bool).unsqueeze(2);             // [B, L, 1]
        return torch.where(mask, text, text_embedding_padding).MoveToOuterDisposeScope();
    }

    /// <summary>The frame-phase context token [B, 1, Dc] (config frame_phase_token), embedded as temb embeds the phase;
    /// with frame_phase_token_text the embedder also reads the pooled T5 text ([B, P], as temb's step-invariant part does).</summary>
    private Tensor FramePhaseToken(Tensor framePhase, Tensor pooled, ScalarType dtype)
    {
        var input = HunyuanCombinedTimestepTextSizeStyleEmbedding.PhaseSinusoid(framePhase, dtype);           // [B, 256]
        if (Config.FramePhaseTokenText)
            input = torch.cat([input, pooled], 1);                                                               // [B, 256 + P]
        return frame_phase_token_embedder!.call(input).unsqueeze(1);
    }

    private static void Expect(Tensor t, string name, params long[] shape)
    {
        if (!t.shape.SequenceEqual(shape))
            throw new ArgumentException($"{name} must have shape {SafetensorsFile.FormatShape(shape)}, got {Shape(t)}", name);
    }

    private static string Shape(Tensor t) => SafetensorsFile.FormatShape(t.shape);
}

/// <summary>
/// A text prepared for the transformer (<see cref="HunyuanDiT2DModel.PrepareText"/>): temb's non-timestep part [B, D] and
/// each block's cross-attention keys and values. Owns its tensors.
/// </summary>
public sealed class PreparedText(long batch, Tensor stepInvariantEmbedding, IReadOnlyList<TextKeyValue> crossAttention) : IDisposable
{
    public long Batch { get; } = batch;
    public Tensor StepInvariantEmbedding { get; } = stepInvariantEmbedding;
    public IReadOnlyList<TextKeyValue> CrossAttention { get; } = crossAttention;

    public void Dispose()
    {
        StepInvariantEmbedding.Dispose();
        foreach (var kv in CrossAttention) kv.Dispose();
    }
}
