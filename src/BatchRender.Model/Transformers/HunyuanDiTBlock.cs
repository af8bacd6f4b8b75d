using BatchRender.Model.Attention;
using BatchRender.Model.Normalization;
using TorchSharp;
using static TorchSharp.torch;

namespace BatchRender.Model.Transformers;

/// <summary>
/// One Hunyuan-DiT block: [long skip: skip_linear(skip_norm(cat(h, skip)))] -> h + attn1(norm1(h, temb)) with RoPE on q, k
/// -> h + attn2(norm2(h), text) with RoPE on q only -> h + ff(norm3(h)). norm1/norm2/norm3/skip_norm compute in float32.
/// </summary>
public sealed class HunyuanDiTBlock : nn.Module
{
    public AdaLayerNormShift norm1;
    public HunyuanAttention attn1;
    public FP32LayerNorm norm2;
    public HunyuanAttention attn2;
    public FP32LayerNorm norm3;
    public FeedForward ff;
    public FP32LayerNorm? skip_norm;
    public nn.Module<Tensor, Tensor>? skip_linear;

    public bool HasSkip => skip_linear is not null;

    public HunyuanDiTBlock(int dim, int numAttentionHeads, long crossAttentionDim, int ffInnerDim, string activationFn = "gelu-approximate",
                           bool skip = false, double normEps = 1e-6, Device? device = null, ScalarType? dtype = null)
        : base(nameof(HunyuanDiTBlock))
    {
        int headDim = dim / numAttentionHeads;
        norm1 = new AdaLayerNormShift(dim, elementwiseAffine: true, eps: normEps, device, dtype);
        attn1 = new HunyuanAttention(dim, crossAttentionDim: null, numAttentionHeads, headDim, 1e-6, device, dtype);
        norm2 = new FP32LayerNorm(dim, normEps, elementwiseAffine: true, device, dtype);
        attn2 = new HunyuanAttention(dim, crossAttentionDim, numAttentionHeads, headDim, 1e-6, device, dtype);
        norm3 = new FP32LayerNorm(dim, normEps, elementwiseAffine: true, device, dtype);
        ff = new FeedForward(dim, ffInnerDim, activationFn, device, dtype);
        if (skip)
        {
            skip_norm = new FP32LayerNorm(2L * dim, normEps, elementwiseAffine: true, device, dtype);
            skip_linear = nn.Linear(2L * dim, dim, device: device, dtype: dtype);
        }
        RegisterComponents();
    }

    /// <param name="hiddenStates">[B, N, D]</param>
    /// <param name="encoderHiddenStates">text tokens [B, L, Dc]</param>
    /// <param name="temb">[B, D]</param>
    /// <param name="rope">(cos, sin) [N, head_dim]</param>
    /// <param name="skip">output of the paired first-half block [B, N, D]; required exactly when this block has a skip</param>
    public Tensor forward(Tensor hiddenStates, Tensor encoderHiddenStates, Tensor temb, (Tensor Cos, Tensor Sin) rope, Tensor? skip = null)
        => Forward(hiddenStates, encoderHiddenStates, null, temb, rope, skip);

    /// <summary>The block with the text's cross-attention keys and values already projected (<see cref="HunyuanAttention.ProjectText"/> of attn2).</summary>
    public Tensor forward(Tensor hiddenStates, TextKeyValue text, Tensor temb, (Tensor Cos, Tensor Sin) rope, Tensor? skip = null)
        => Forward(hiddenStates, null, text, temb, rope, skip);

    private Tensor Forward(Tensor hiddenStates, Tensor? encoderHiddenStates, TextKeyValue? text, Tensor temb, (Tensor Cos, Tensor Sin) rope, Tensor? skip)
    {
        if (HasSkip != skip is not null)
            throw new ArgumentException(HasSkip ? "this block has a long skip connection; pass the skip tensor" : "this block takes no skip tensor");
        if (skip is not null && !skip.shape.SequenceEqual(hiddenStates.shape))
            throw new ArgumentException($"skip [{string.Join(", ", skip.shape)}] must have the hidden states' shape [{string.Join(", ", hiddenStates.shape)}]", nameof(skip));
        using var scope = torch.NewDisposeScope();
        var h = hiddenStates;
        if (skip is not null)
            h = skip_linear!.call(skip_norm!.call(torch.cat([h, skip], -1)));     // [B, N, 2D] -> [B, N, D]
        h = h + attn1.forward(norm1.forward(h, temb), rope: rope);
        h = h + attn2.forward(norm2.call(h), encoderHiddenStates, rope, text);
        h = h + ff.call(norm3.call(h));
        return h.MoveToOuterDisposeScope();
    }
}
