using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace BatchRender.Model.Embeddings;

/// <summary>
/// The conditioning vector temb [B, D] = timestep_embedder(sinusoid(t)) + extra_embedder(extra), where extra is the pooled
/// T5 text (v1.2), or pooled text ++ sinusoid of the 6 image-meta-size numbers ++ style embedding (v1.0/v1.1).
/// Extension (off unless configured): + frame_phase_embedder(sinusoid(phase * <see cref="FramePhaseScale"/>)).
/// </summary>
public sealed class HunyuanCombinedTimestepTextSizeStyleEmbedding : nn.Module
{
    /// <summary>Phase in [0, 1] is stretched to the timestep range so the 256-wide sinusoid resolves it like a timestep.</summary>
    public const double FramePhaseScale = 1000.0;
    /// <summary>Width of the sinusoid the timestep (and the frame phase) is embedded from.</summary>
    public const int SinusoidDim = 256;

    public TimestepEmbedding timestep_embedder;
    public HunyuanDiTAttentionPool pooler;
    public Embedding? style_embedder;
    public PixArtAlphaTextProjection extra_embedder;
    public TimestepEmbedding? frame_phase_embedder;

    public bool UseStyleCondAndImageMetaSize { get; }
    public bool UseFramePhase { get; }

    public HunyuanCombinedTimestepTextSizeStyleEmbedding(long embeddingDim, long pooledProjectionDim, long seqLen, long crossAttentionDim,
                                                         bool useStyleCondAndImageMetaSize, bool framePhaseEmbedding = false,
                                                         Device? device = null, ScalarType? dtype = null)
        : base(nameof(HunyuanCombinedTimestepTextSizeStyleEmbedding))
    {
        UseStyleCondAndImageMetaSize = useStyleCondAndImageMetaSize;
        UseFramePhase = framePhaseEmbedding;
        timestep_embedder = new TimestepEmbedding(SinusoidDim, embeddingDim, device, dtype);
        pooler = new HunyuanDiTAttentionPool(seqLen, crossAttentionDim, numHeads: 8, outputDim: pooledProjectionDim, device, dtype);
        long extraInDim = pooledProjectionDim;
        if (useStyleCondAndImageMetaSize)
        {
            style_embedder = nn.Embedding(1, embeddingDim, device: device, dtype: dtype);
            extraInDim = SinusoidDim * 6 + embeddingDim + pooledProjectionDim;
        }
        extra_embedder = new PixArtAlphaTextProjection(extraInDim, embeddingDim * 4, embeddingDim, device, dtype);
        if (framePhaseEmbedding)
        {
            frame_phase_embedder = new TimestepEmbedding(SinusoidDim, embeddingDim, device, dtype);
            // Zero output layer: a fresh phase condition starts as a no-op on temb, so fine-tuning begins from the image model.
            using (torch.no_grad())
            {
                ((Linear)frame_phase_embedder.linear_2).weight!.zero_();
                ((Linear)frame_phase_embedder.linear_2).bias!.zero_();
            }
        }
        RegisterComponents();
    }

    /// <summary>[B] phases in [0, 1] -> [B, 256] sinusoid, the phase stretched to the timestep range.</summary>
    public static Tensor PhaseSinusoid(Tensor framePhase, ScalarType dtype)
        => Timesteps.Embed(framePhase * FramePhaseScale, SinusoidDim).to(dtype);

    /// <param name="timestep">[B]</param>
    /// <param name="t5States">raw T5 states [B, L_t5, C_t5]</param>
    /// <param name="imageMetaSize">[B, 6] (v1.0/v1.1 only)</param>
    /// <param name="style">[B] int64 (v1.0/v1.1 only)</param>
    /// <param name="hiddenDtype">dtype of the model's Linear inputs</param>
    /// <param name="framePhase">[B] in [0, 1] (frame-phase models only)</param>
    public Tensor forward(Tensor timestep, Tensor t5States, Tensor? imageMetaSize, Tensor? style, ScalarType hiddenDtype, Tensor? framePhase = null)
    {
        using var scope = torch.NewDisposeScope();
        var stepInvariant = StepInvariant(pooler.call(t5States), imageMetaSize, style, hiddenDtype, framePhase);
        return WithTimestep(timestep, stepInvariant, hiddenDtype).MoveToOuterDisposeScope();
    }

    /// <summary>temb [B, D] from the timestep and the <see cref="StepInvariant"/> part.</summary>
    public Tensor WithTimestep(Tensor timestep, Tensor stepInvariant, ScalarType hiddenDtype)
        => timestep_embedder.call(Timesteps.Embed(timestep, SinusoidDim).to(hiddenDtype)) + stepInvariant;

    /// <summary>Everything in temb but the timestep, [B, D]: the same at every denoising step of a render.</summary>
    /// <param name="pooled"><see cref="pooler"/>'s output for the raw T5 states, [B, P] (the caller pools once: the
    /// transformer's frame-phase token can read it too)</param>
    public Tensor StepInvariant(Tensor pooled, Tensor? imageMetaSize, Tensor? style, ScalarType hiddenDtype, Tensor? framePhase = null)
    {
        using var scope = torch.NewDisposeScope();
        Tensor extra = pooled;
        if (UseStyleCondAndImageMetaSize)
        {
            var size = Timesteps.Embed(imageMetaSize!.reshape(-1), SinusoidDim).to(hiddenDtype).view(-1, 6 * SinusoidDim);   // [B, 1536]
            var styleEmb = style_embedder!.call(style!);                                                     // [B, D]
            extra = torch.cat([pooled, size, styleEmb], 1);
        }
        var conditioning = extra_embedder.call(extra);
        if (UseFramePhase && framePhase is not null)
            conditioning = conditioning + frame_phase_embedder!.call(PhaseSinusoid(framePhase, hiddenDtype));
        return conditioning.MoveToOuterDisposeScope();
    }
}
