using BatchRender.Model.Embeddings;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace BatchRender.Model.Attention;

/// <summary>
/// diffusers Attention with HunyuanAttnProcessor2_0: q/k/v projections (bias), per-head LayerNorm on q and k (eps 1e-6),
/// RoPE on q and k for self-attention and on q only for cross-attention, SDPA without a mask, output projection to_out.0.
/// The projections are plain modules so another implementation (e.g. int8) can replace them; <see cref="ComputeQkv"/>
/// is the single place q, k, v are computed, and <see cref="QkvProjection"/> can take it over (e.g. one fused GEMM) (the int8 quantizer
/// installs one fused GEMM for q, k, v of self-attention and k, v of cross-attention).
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
    /// Optional replacement of the q/k/v projections: (hidden [B, N, Dq], context [B, M, Dc]) -> (q [B, N, H*hd], k, v [B, M, H*hd]).
    /// For self-attention context is the same tensor as hidden.
    /// </summary>
    public Func<Tensor, Tensor, (Tensor Query, Tensor Key, Tensor Value)>? QkvProjection { get; set; }

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

    /// <summary>q from the hidden states, k and v from the context (the hidden states for self-attention).</summary>
    public (Tensor Query, Tensor Key, Tensor Value) ComputeQkv(Tensor hiddenStates, Tensor context)
        => QkvProjection is { } fused
            ? fused(hiddenStates, context)
            : (to_q.call(hiddenStates), to_k.call(context), to_v.call(context));

    /// <param name="hiddenStates">[B, N, queryDim]</param>
    /// <param name="encoderHiddenStates">[B, M, crossAttentionDim] for cross-attention; null for self-attention</param>
    /// <param name="rope">(cos, sin) [N, headDim] of the image tokens, or null</param>
    public Tensor forward(Tensor hiddenStates, Tensor? encoderHiddenStates = null, (Tensor Cos, Tensor Sin)? rope = null)
    {
        if (IsCrossAttention != encoderHiddenStates is not null)
            throw new ArgumentException(IsCrossAttention ? "cross-attention needs encoder hidden states" : "self-attention takes no encoder hidden states");
        // Shape errors inside libtorch's matmul abort the process, so check here.
        if (hiddenStates.ndim != 3 || hiddenStates.shape[2] != QueryDim)
            throw new ArgumentException($"hidden states must be [B, N, {QueryDim}], got [{string.Join(", ", hiddenStates.shape)}]", nameof(hiddenStates));
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
        var context = encoderHiddenStates ?? hiddenStates;
        var (q, k, v) = ComputeQkv(hiddenStates, context);
        q = q.reshape(b, -1, Heads, HeadDim).transpose(1, 2);   // [B, H, N, hd]
        k = k.reshape(b, -1, Heads, HeadDim).transpose(1, 2);   // [B, H, M, hd]
        v = v.reshape(b, -1, Heads, HeadDim).transpose(1, 2);
        q = norm_q.call(q);
        k = norm_k.call(k);
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
