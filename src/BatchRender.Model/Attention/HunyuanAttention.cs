using BatchRender.Model.Embeddings;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace BatchRender.Model.Attention;

/// <summary>
/// diffusers Attention with HunyuanAttnProcessor2_0: q/k/v projections (bias), per-head LayerNorm on q and k (eps 1e-6),
/// RoPE on q and k for self-attention and on q only for cross-attention, SDPA without a mask, output projection to_out.0.
/// The projections are plain modules so another implementation (e.g. int8) can replace them; ComputeQkv (self-attention)
/// and ComputeKv (cross-attention) are the single places q, k, v are computed, and <see cref="QkvProjection"/> and
/// <see cref="KvProjection"/> can take them over with one fused GEMM per input (as the int8 quantizer does). Cross-attention's keys
/// and values depend on the text alone: <see cref="ProjectText"/> computes them once per render.
/// </summary>
public sealed class HunyuanAttention : nn.Module
{
    public nn.Module<Tensor, Tensor> to_q;
    public nn.Module<Tensor, Tensor> to_k;
    public nn.Module<Tensor, Tensor> to_v;
    public LayerNorm norm_q;
    public LayerNorm norm_k;
    /// <summary>[Linear (to_out.0), Dropout(0) (to_out.1)], as diffusers names them.</summary>
    public Sequential to_out;

    public int Heads { get; }
    public int HeadDim { get; }
    public long QueryDim { get; }
    public long CrossAttentionDim { get; }
    public bool IsCrossAttention { get; }

    /// <summary>
    /// Optional replacement of self-attention's q/k/v projections: (hidden [B, N, Dq], context: the same tensor) ->
    /// (q, k, v [B, N, H*hd]).
    /// </summary>
    public Func<Tensor, Tensor, (Tensor Query, Tensor Key, Tensor Value)>? QkvProjection { get; set; }

    /// <summary>Optional replacement of cross-attention's k/v projections: context [B, M, Dc] -> (k, v [B, M, H*hd]).</summary>
    public Func<Tensor, (Tensor Key, Tensor Value)>? KvProjection { get; set; }

    /// <param name="crossAttentionDim">width of the context; null for self-attention</param>
    public HunyuanAttention(long queryDim, long? crossAttentionDim, int heads, int headDim, double eps = 1e-6,
                            Device? device = null, ScalarType? dtype = null)
        : base(nameof(HunyuanAttention))
    {
        Heads = heads;
        HeadDim = headDim;
        QueryDim = queryDim;
        IsCrossAttention = crossAttentionDim is not null;
        CrossAttentionDim = crossAttentionDim ?? queryDim;
        long inner = (long)heads * headDim;
        to_q = nn.Linear(queryDim, inner, hasBias: true, device: device, dtype: dtype);
        to_k = nn.Linear(CrossAttentionDim, inner, hasBias: true, device: device, dtype: dtype);
        to_v = nn.Linear(CrossAttentionDim, inner, hasBias: true, device: device, dtype: dtype);
        norm_q = nn.LayerNorm(headDim, eps, elementwise_affine: true, device: device, dtype: dtype);
        norm_k = nn.LayerNorm(headDim, eps, elementwise_affine: true, device: device, dtype: dtype);
        to_out = nn.Sequential(nn.Linear(inner, queryDim, hasBias: true, device: device, dtype: dtype), nn.Dropout(0.0));
        RegisterComponents();
    }

    /// <summary>to_out.0: [heads * head_dim] -> [query_dim].</summary>
    public nn.Module<Tensor, Tensor> OutProjection => (nn.Module<Tensor, Tensor>)to_out[0];

    /// <summary>Self-attention's q, k and v, all from the hidden states [B, N, Dq] -> [B, N, H*hd] each.</summary>
    private (Tensor Query, Tensor Key, Tensor Value) ComputeQkv(Tensor hiddenStates)
        => QkvProjection is { } fused ? fused(hiddenStates, hiddenStates)
            : (to_q.call(hiddenStates), to_k.call(hiddenStates), to_v.call(hiddenStates));

    /// <summary>Cross-attention's k and v from the text context [B, M, Dc] -> [B, M, H*hd] each.</summary>
    private (Tensor Key, Tensor Value) ComputeKv(Tensor context) =>
        KvProjection is { } fused ? fused(context) : (to_k.call(context), to_v.call(context));

    /// <summary>
    /// Cross-attention's keys and values of a text context [B, M, Dc] as attention uses them ([B, H, M, hd], norm_k
    /// applied; text keys take no RoPE): they depend on the text alone, so a render computes them once for all its steps.
    /// </summary>
    public TextKeyValue ProjectText(Tensor context)
    {
        if (!IsCrossAttention) throw new InvalidOperationException("only cross-attention attends to text");
        if (context.ndim != 3 || context.shape[2] != CrossAttentionDim)
            throw new ArgumentException($"the text context must be [B, M, {CrossAttentionDim}], got [{string.Join(", ", context.shape)}]", nameof(context));
        using var scope = torch.NewDisposeScope();
        long b = context.shape[0];
        var (k, v) = ComputeKv(context);
        k = norm_k.call(k.reshape(b, -1, Heads, HeadDim).transpose(1, 2));   // [B, H, M, hd]
        v = v.reshape(b, -1, Heads, HeadDim).transpose(1, 2);
        return new TextKeyValue(k.MoveToOuterDisposeScope(), v.MoveToOuterDisposeScope());
    }

    /// <param name="hiddenStates">[B, N, queryDim]</param>
    /// <param name="encoderHiddenStates">[B, M, crossAttentionDim] for cross-attention; null for self-attention</param>
    /// <param name="rope">(cos, sin) [N, headDim] of the image tokens, or null</param>
    /// <param name="text">cross-attention only: the text's keys and values from <see cref="ProjectText"/>, instead of
    /// <paramref name="encoderHiddenStates"/></param>
    public Tensor forward(Tensor hiddenStates, Tensor? encoderHiddenStates = null, (Tensor Cos, Tensor Sin)? rope = null, TextKeyValue? text = null)
    {
        if (IsCrossAttention != (encoderHiddenStates is not null || text is not null))
            throw new ArgumentException(IsCrossAttention ? "cross-attention needs encoder hidden states" : "self-attention takes no encoder hidden states");
        if (encoderHiddenStates is not null && text is not null)
            throw new ArgumentException("pass the encoder hidden states or their projected keys and values, not both");
        // Shape errors inside libtorch's matmul abort the process, so check here.
        if (hiddenStates.ndim != 3 || hiddenStates.shape[2] != QueryDim)
            throw new ArgumentException($"hidden states must be [B, N, {QueryDim}], got [{string.Join(", ", hiddenStates.shape)}]", nameof(hiddenStates));
        if (text is not null && (text.Key.ndim != 4 || text.Key.shape[0] != hiddenStates.shape[0] || text.Key.shape[1] != Heads || text.Key.shape[3] != HeadDim
                                 || !text.Value.shape.SequenceEqual(text.Key.shape)))
            throw new ArgumentException($"text keys and values must be [{hiddenStates.shape[0]}, {Heads}, M, {HeadDim}], got [{string.Join(", ", text.Key.shape)}]",
                                        nameof(text));
        if (encoderHiddenStates is not null && (encoderHiddenStates.ndim != 3 || encoderHiddenStates.shape[0] != hiddenStates.shape[0]
                                                || encoderHiddenStates.shape[2] != CrossAttentionDim))
            throw new ArgumentException($"encoder hidden states must be [{hiddenStates.shape[0]}, M, {CrossAttentionDim}], got [{string.Join(", ", encoderHiddenStates.shape)}]",
                                        nameof(encoderHiddenStates));
        if (rope is { } table && (table.Cos.ndim != 2 || table.Cos.shape[0] != hiddenStates.shape[1] || table.Cos.shape[1] != HeadDim
                                  || !table.Sin.shape.SequenceEqual(table.Cos.shape)))
            throw new ArgumentException($"rope tables must be [{hiddenStates.shape[1]}, {HeadDim}], got cos [{string.Join(", ", table.Cos.shape)}], sin [{string.Join(", ", table.Sin.shape)}]",
                                        nameof(rope));
        using var scope = torch.NewDisposeScope();
        long b = hiddenStates.shape[0];
        Tensor q, k, v;
        if (IsCrossAttention)
        {
            var projected = text ?? ProjectText(encoderHiddenStates!);   // [B, H, M, hd] each
            (k, v) = (projected.Key, projected.Value);
            q = to_q.call(hiddenStates);
        }
        else
        {
            (q, k, v) = ComputeQkv(hiddenStates);
            k = norm_k.call(k.reshape(b, -1, Heads, HeadDim).transpose(1, 2));   // [B, H, N, hd]
            v = v.reshape(b, -1, Heads, HeadDim).transpose(1, 2);
        }
        q = norm_q.call(q.reshape(b, -1, Heads, HeadDim).transpose(1, 2));     // [B, H, N, hd]
        if (rope is { } r)
        {
            q = HunyuanRotaryEmbedding.Apply(q, r.Cos, r.Sin);
            if (!IsCrossAttention) k = HunyuanRotaryEmbedding.Apply(k, r.Cos, r.Sin);   // keys of cross-attention are text tokens
        }
        var attended = nn.functional.scaled_dot_product_attention(q, k, v);        // [B, H, N, hd]
        var merged = attended.transpose(1, 2).reshape(b, -1, (long)Heads * HeadDim);
        return to_out.call(merged).MoveToOuterDisposeScope();
    }
}

/// <summary>Cross-attention keys and values of a text, [B, H, M, head_dim] each (see <see cref="HunyuanAttention.ProjectText"/>).</summary>
public sealed record TextKeyValue(Tensor Key, Tensor Value) : IDisposable
{
    public void Dispose()
    {
        Key.Dispose();
        Value.Dispose();
    }
}
