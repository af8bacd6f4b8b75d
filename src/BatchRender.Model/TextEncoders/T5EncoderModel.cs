using System.Text.Json.Nodes;
using BatchRender.Model.Loading;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;
using static TorchSharp.torch.nn;
using F = TorchSharp.torch.nn.functional;

namespace BatchRender.Model.TextEncoders;

// Hugging Face transformers' T5EncoderModel (modeling_t5.py), inference only. Field names are the state-dict keys:
// shared.weight, encoder.block.{i}.layer.0.SelfAttention.{q,k,v,o}.weight,
// encoder.block.0.layer.0.SelfAttention.relative_attention_bias.weight, encoder.block.{i}.layer.1.DenseReluDense.wi_0.weight,
// encoder.final_layer_norm.weight, ... Hunyuan-DiT's text_encoder_2 (mT5-XL encoder): the pipeline uses
// last_hidden_state [B, 256, 2048].

/// <summary>T5's RMSNorm: no mean subtraction, no bias; the variance is computed in float32 whatever the dtype.</summary>
public sealed class T5LayerNorm : Module<Tensor, Tensor>
{
    private readonly Parameter weight;
    private readonly double _eps;

    public T5LayerNorm(long hiddenSize, double eps, Device? device = null, ScalarType? dtype = null) : base(nameof(T5LayerNorm))
    {
        weight = Parameter(ones(hiddenSize, dtype: dtype ?? ScalarType.Float32, device: device));
        _eps = eps;
        RegisterComponents();
    }

    public override Tensor forward(Tensor x)
    {
        using var scope = NewDisposeScope();
        var variance = x.to_type(ScalarType.Float32).pow(2).mean([-1], keepdim: true);
        var normed = x * rsqrt(variance + _eps);
        if (weight.dtype is ScalarType.Float16 or ScalarType.BFloat16) normed = normed.to_type(weight.dtype);
        return (weight * normed).MoveToOuterDisposeScope();
    }
}

/// <summary>
/// Self-attention without the 1/sqrt(d) scaling (T5 folds it into the initialisation), with the learned relative
/// position bias added to the logits. Only the first block owns relative_attention_bias; its bias is reused by all.
/// </summary>
public sealed class T5Attention : Module<Tensor, Tensor, Tensor>
{
    private readonly Linear q, k, v, o;
    private readonly Embedding? relative_attention_bias;
    private readonly int _heads, _dKv, _numBuckets, _maxDistance;

    public T5Attention(T5Config c, bool hasRelativeAttentionBias, Device? device = null, ScalarType? dtype = null) : base(nameof(T5Attention))
    {
        int inner = c.NumHeads * c.DKv;
        q = Linear(c.DModel, inner, hasBias: false, device: device, dtype: dtype);
        k = Linear(c.DModel, inner, hasBias: false, device: device, dtype: dtype);
        v = Linear(c.DModel, inner, hasBias: false, device: device, dtype: dtype);
        o = Linear(inner, c.DModel, hasBias: false, device: device, dtype: dtype);
        if (hasRelativeAttentionBias)
            relative_attention_bias = EmbeddingTable.Create(c.RelativeAttentionNumBuckets, c.NumHeads, device, dtype);
        (_heads, _dKv, _numBuckets, _maxDistance) = (c.NumHeads, c.DKv, c.RelativeAttentionNumBuckets, c.RelativeAttentionMaxDistance);
        RegisterComponents();
    }

    /// <summary>
    /// transformers' _relative_position_bucket, bidirectional: half the buckets for keys after the query; within a half,
    /// exact buckets for |distance| &lt; num_buckets/4, then logarithmic buckets up to max_distance (and beyond, the last).
    /// </summary>
    /// <param name="relativePosition">key position - query position, int64</param>
    public static Tensor RelativePositionBucket(Tensor relativePosition, int numBuckets, int maxDistance)
    {
        using var scope = NewDisposeScope();
        int half = numBuckets / 2;
        var buckets = (relativePosition > 0).to_type(ScalarType.Int64) * half;
        var distance = relativePosition.abs();
        int maxExact = half / 2;
        var isSmall = distance < maxExact;
        var large = maxExact + (log(distance.to_type(ScalarType.Float32) / maxExact) / Math.Log((double)maxDistance / maxExact)
                                * (half - maxExact)).to_type(ScalarType.Int64);
        large = minimum(large, full_like(large, half - 1));
        return (buckets + where(isSmall, distance, large)).MoveToOuterDisposeScope();
    }

    /// <summary>Position bias [1, heads, L, L] for a length-L sequence (block 0 only).</summary>
    public Tensor ComputeBias(long length, Device device)
    {
        if (relative_attention_bias is null) throw new InvalidOperationException("only the first T5 block has relative_attention_bias");
        using var scope = NewDisposeScope();
        var context = arange(length, dtype: ScalarType.Int64, device: device)[.., TensorIndex.None];
        var memory = arange(length, dtype: ScalarType.Int64, device: device)[TensorIndex.None, ..];
        var buckets = RelativePositionBucket(memory - context, _numBuckets, _maxDistance); // [L, L]
        var values = relative_attention_bias.forward(buckets);                               // [L, L, heads]
        return values.permute(2, 0, 1).unsqueeze(0).MoveToOuterDisposeScope();
    }

    /// <param name="x">[B, L, d_model] (already layer-normed)</param>
    /// <param name="bias">position bias + additive padding mask, [B, heads, L, L] in x's dtype</param>
    public override Tensor forward(Tensor x, Tensor bias)
    {
        using var scope = NewDisposeScope();
        long B = x.shape[0], L = x.shape[1];
        Tensor Heads(Tensor t) => t.view(B, L, _heads, _dKv).transpose(1, 2); // [B, heads, L, d_kv]
        // SDPA always scales by 1/sqrt(d_kv) (TorchSharp exposes no scale argument); T5 uses none, so pre-scale q.
        var query = Heads(q.forward(x)) * Math.Sqrt(_dKv);
        var context = F.scaled_dot_product_attention(query, Heads(k.forward(x)), Heads(v.forward(x)), bias);
        return o.forward(context.transpose(1, 2).reshape(B, L, _heads * _dKv)).MoveToOuterDisposeScope();
    }
}

/// <summary>layer.0 of a block: pre-norm self-attention with residual.</summary>
public sealed class T5LayerSelfAttention : Module<Tensor, Tensor, Tensor>
{
    internal readonly T5Attention SelfAttention;
    private readonly T5LayerNorm layer_norm;

    public T5LayerSelfAttention(T5Config c, bool hasRelativeAttentionBias, Device? device = null, ScalarType? dtype = null) : base(nameof(T5LayerSelfAttention))
    {
        SelfAttention = new T5Attention(c, hasRelativeAttentionBias, device, dtype);
        layer_norm = new T5LayerNorm(c.DModel, c.LayerNormEpsilon, device, dtype);
        RegisterComponents();
    }

    public override Tensor forward(Tensor x, Tensor bias)
    {
        using var normed = layer_norm.forward(x);
        using var attended = SelfAttention.forward(normed, bias);
        return x + attended;
    }
}

/// <summary>T5 v1.1 / mT5 gated FFN: wo(act(wi_0 x) * wi_1 x); or the original T5 FFN wo(act(wi x)).</summary>
public sealed class T5DenseActDense : Module<Tensor, Tensor>
{
    private readonly Linear? wi, wi_0, wi_1;
    private readonly Linear wo;
    private readonly Func<Tensor, Tensor> _act;

    public T5DenseActDense(T5Config c, Device? device = null, ScalarType? dtype = null) : base(nameof(T5DenseActDense))
    {
        if (c.IsGatedAct)
        {
            wi_0 = Linear(c.DModel, c.DFf, hasBias: false, device: device, dtype: dtype);
            wi_1 = Linear(c.DModel, c.DFf, hasBias: false, device: device, dtype: dtype);
        }
        else
        {
            wi = Linear(c.DModel, c.DFf, hasBias: false, device: device, dtype: dtype);
        }
        wo = Linear(c.DFf, c.DModel, hasBias: false, device: device, dtype: dtype);
        _act = Activations.Get(c.DenseActFn);
        RegisterComponents();
    }

    public override Tensor forward(Tensor x)
    {
        using var scope = NewDisposeScope();
        var h = wi is not null ? _act(wi.forward(x)) : _act(wi_0!.forward(x)) * wi_1!.forward(x);
        return wo.forward(h.to_type(wo.weight!.dtype)).MoveToOuterDisposeScope();
    }
}

/// <summary>layer.1 of a block: pre-norm FFN with residual.</summary>
public sealed class T5LayerFF : Module<Tensor, Tensor>
{
    private readonly T5DenseActDense DenseReluDense;
    private readonly T5LayerNorm layer_norm;

    public T5LayerFF(T5Config c, Device? device = null, ScalarType? dtype = null) : base(nameof(T5LayerFF))
    {
        DenseReluDense = new T5DenseActDense(c, device, dtype);
        layer_norm = new T5LayerNorm(c.DModel, c.LayerNormEpsilon, device, dtype);
        RegisterComponents();
    }

    public override Tensor forward(Tensor x)
    {
        using var normed = layer_norm.forward(x);
        using var ff = DenseReluDense.forward(normed);
        return x + ff;
    }
}

public sealed class T5Block : Module<Tensor, Tensor, Tensor>
{
    // layer.0 = T5LayerSelfAttention, layer.1 = T5LayerFF (transformers' numbering; the module list is the only reference
    // kept, so that no second name for the same parameters reaches the state dict).
    private readonly ModuleList<Module> layer;

    public T5Block(T5Config c, bool hasRelativeAttentionBias, Device? device = null, ScalarType? dtype = null) : base(nameof(T5Block))
    {
        layer = ModuleList<Module>(new T5LayerSelfAttention(c, hasRelativeAttentionBias, device, dtype), new T5LayerFF(c, device, dtype));
        RegisterComponents();
    }

    private T5LayerSelfAttention Attention => (T5LayerSelfAttention)layer[0];
    private T5LayerFF FeedForward => (T5LayerFF)layer[1];
    internal T5Attention SelfAttention => Attention.SelfAttention;

    public override Tensor forward(Tensor x, Tensor bias)
    {
        using var scope = NewDisposeScope();
        var h = ClampFp16(Attention.forward(x, bias));
        return ClampFp16(FeedForward.forward(h)).MoveToOuterDisposeScope();
    }

    /// <summary>transformers clamps fp16 activations just below the fp16 maximum after each sub-layer (T5 overflows in
    /// fp16 otherwise).</summary>
    private static Tensor ClampFp16(Tensor h)
    {
        if (h.dtype != ScalarType.Float16) return h;
        double clamp = h.isinf().any().item<bool>() ? 65504.0 - 1000 : 65504.0;
        return h.clamp(-clamp, clamp);
    }
}

public sealed class T5Stack : Module<Tensor, Tensor, Tensor>
{
    private readonly ModuleList<T5Block> block;
    private readonly T5LayerNorm final_layer_norm;

    public T5Stack(T5Config c, Device? device = null, ScalarType? dtype = null) : base(nameof(T5Stack))
    {
        block = ModuleList(Enumerable.Range(0, c.NumLayers).Select(i => new T5Block(c, hasRelativeAttentionBias: i == 0, device, dtype)).ToArray());
        final_layer_norm = new T5LayerNorm(c.DModel, c.LayerNormEpsilon, device, dtype);
        RegisterComponents();
    }

    /// <param name="embedded">[B, L, d_model]</param>
    /// <param name="attentionMask">[B, L] 1/0</param>
    public override Tensor forward(Tensor embedded, Tensor attentionMask)
    {
        using var scope = NewDisposeScope();
        long L = embedded.shape[1];
        // Bias computed once from block 0's table and shared by every layer, with the padding mask folded in.
        var bias = block[0].SelfAttention.ComputeBias(L, embedded.device).to_type(embedded.dtype)
                   + Activations.AdditiveMask(attentionMask, embedded.dtype);
        var h = embedded;
        foreach (var b in block) h = b.forward(h, bias);
        return final_layer_norm.forward(h).MoveToOuterDisposeScope();
    }
}

/// <summary>
/// T5 / mT5 encoder (transformers T5EncoderModel): <see cref="forward"/> returns last_hidden_state [B, L, d_model]
/// (after the final RMSNorm). The token embedding is <c>shared.weight</c>; transformers also exposes it as
/// <c>encoder.embed_tokens.weight</c> (tied), which a checkpoint may or may not contain: see <see cref="TiedKeys"/>.
/// </summary>
public sealed class T5EncoderModel : Module<Tensor, Tensor, Tensor>
{
    private readonly Embedding shared;
    private readonly T5Stack encoder;

    /// <summary>Checkpoint keys that alias a parameter of this module (tied weights): alias -> parameter name.</summary>
    public static readonly IReadOnlyDictionary<string, string> TiedKeys = new Dictionary<string, string>
    {
        ["encoder.embed_tokens.weight"] = "shared.weight",
    };

    /// <param name="device">where parameters are created; <c>torch.META</c> builds the structure without memory.</param>
    public T5EncoderModel(T5Config config, Device? device = null, ScalarType? dtype = null) : base(nameof(T5EncoderModel))
    {
        Config = config.Validated();
        shared = EmbeddingTable.Create(config.VocabSize, config.DModel, device, dtype);
        encoder = new T5Stack(config, device, dtype);
        RegisterComponents();
    }

    public T5Config Config { get; }

    /// <summary>
    /// Loads a transformers T5EncoderModel / MT5EncoderModel folder (config.json + model.safetensors, or shards as mT5-XL
    /// ships), strictly. The tied embedding may be stored as shared.weight, encoder.embed_tokens.weight or both; a full
    /// encoder-decoder checkpoint's decoder.* and lm_head.* tensors are skipped, as transformers' T5EncoderModel does.
    /// </summary>
    public static T5EncoderModel FromPretrained(string componentDirectory, Device? device = null, ScalarType? dtype = null)
    {
        var config = T5Config.Load(componentDirectory);
        bool hasShared = PretrainedComponent.WeightKeys(componentDirectory).Contains("shared.weight");
        var model = new T5EncoderModel(config, device, dtype);
        DiffusersComponent.LoadStateDict(model, componentDirectory, options: new StateDictLoadOptions
        {
            MapFileKey = key => TiedKeys.TryGetValue(key, out var target) ? (hasShared ? null : target) : key,
            IgnoreUnexpected = key => key.StartsWith("decoder.", StringComparison.Ordinal) || key.StartsWith("lm_head.", StringComparison.Ordinal),
        });
        model.eval();
        return model;
    }

    /// <summary>Writes config.json + model.safetensors in the transformers layout (the embedding once, as shared.weight).</summary>
    public void SavePretrained(string componentDirectory, ScalarType? dtype = null) =>
        DiffusersComponent.Save(this, componentDirectory,
            PretrainedComponent.ToJson(Config, ("architectures", new JsonArray("T5EncoderModel")), ("model_type", "t5")),
            weightsFileName: "model.safetensors", dtype: dtype);

    /// <param name="inputIds">[B, L] int64</param>
    /// <param name="attentionMask">[B, L] 1 = token, 0 = padding</param>
    public override Tensor forward(Tensor inputIds, Tensor attentionMask)
    {
        if (inputIds.dim() != 2 || !attentionMask.shape.SequenceEqual(inputIds.shape))
            throw new ArgumentException($"T5: input_ids [B, L] and attention_mask of the same shape expected, got [{string.Join(", ", inputIds.shape)}] and [{string.Join(", ", attentionMask.shape)}]");
        using var embedded = shared.forward(inputIds);
        return encoder.forward(embedded, attentionMask);
    }
}
