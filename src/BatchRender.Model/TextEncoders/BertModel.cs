using System.Text.Json.Nodes;
using BatchRender.Model.Loading;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;
using static TorchSharp.torch.nn;
using F = TorchSharp.torch.nn.functional;

namespace BatchRender.Model.TextEncoders;

// Hugging Face transformers' BertModel (modeling_bert.py), inference only (dropout is identity). Field names are the
// state-dict keys: embeddings.word_embeddings.weight, encoder.layer.{i}.attention.self.query.weight, pooler.dense.weight, ...
// Hunyuan-DiT's text_encoder: the pipeline uses last_hidden_state [B, 77, 1024] with the tokenizer's attention mask.

/// <summary>word + absolute position + token type embeddings, then LayerNorm.</summary>
public sealed class BertEmbeddings : Module<Tensor, Tensor, Tensor>
{
    private readonly Embedding word_embeddings, position_embeddings, token_type_embeddings;
    private readonly LayerNorm LayerNorm;

    public BertEmbeddings(BertConfig c, Device? device = null, ScalarType? dtype = null) : base(nameof(BertEmbeddings))
    {
        word_embeddings = EmbeddingTable.Create(c.VocabSize, c.HiddenSize, device, dtype, paddingIdx: c.PadTokenId);
        position_embeddings = EmbeddingTable.Create(c.MaxPositionEmbeddings, c.HiddenSize, device, dtype);
        token_type_embeddings = EmbeddingTable.Create(c.TypeVocabSize, c.HiddenSize, device, dtype);
        LayerNorm = nn.LayerNorm(c.HiddenSize, c.LayerNormEps, device: device, dtype: dtype);
        RegisterComponents();
    }

    /// <param name="inputIds">[B, L] int64</param>
    /// <param name="tokenTypeIds">[B, L] int64 (zeros when the caller has one segment)</param>
    public override Tensor forward(Tensor inputIds, Tensor tokenTypeIds)
    {
        using var scope = NewDisposeScope();
        long L = inputIds.shape[1];
        var positions = arange(L, dtype: ScalarType.Int64, device: inputIds.device).unsqueeze(0);
        var x = word_embeddings.forward(inputIds) + token_type_embeddings.forward(tokenTypeIds) + position_embeddings.forward(positions);
        return LayerNorm.forward(x).MoveToOuterDisposeScope();
    }
}

/// <summary>Multi-head scaled dot-product self-attention: query/key/value projections.</summary>
public sealed class BertSelfAttention : Module<Tensor, Tensor, Tensor>
{
    private readonly Linear query, key, value;
    private readonly int _heads, _headDim;

    public BertSelfAttention(BertConfig c, Device? device = null, ScalarType? dtype = null) : base(nameof(BertSelfAttention))
    {
        query = Linear(c.HiddenSize, c.HiddenSize, device: device, dtype: dtype);
        key = Linear(c.HiddenSize, c.HiddenSize, device: device, dtype: dtype);
        value = Linear(c.HiddenSize, c.HiddenSize, device: device, dtype: dtype);
        _heads = c.NumAttentionHeads;
        _headDim = c.HeadDim;
        RegisterComponents();
    }

    /// <param name="x">[B, L, H]</param>
    /// <param name="additiveMask">[B, 1, 1, L], 0 or the dtype's minimum</param>
    /// <returns>[B, L, H] context (before the output projection)</returns>
    public override Tensor forward(Tensor x, Tensor additiveMask)
    {
        using var scope = NewDisposeScope();
        long B = x.shape[0], L = x.shape[1];
        Tensor Heads(Tensor t) => t.view(B, L, _heads, _headDim).transpose(1, 2); // [B, heads, L, d]
        var context = F.scaled_dot_product_attention(Heads(query.forward(x)), Heads(key.forward(x)), Heads(value.forward(x)), additiveMask);
        return context.transpose(1, 2).reshape(B, L, _heads * _headDim).MoveToOuterDisposeScope();
    }
}

/// <summary>dense + residual + LayerNorm (post-LN), used after attention (BertSelfOutput) and after the FFN (BertOutput).</summary>
public sealed class BertResidualOutput : Module<Tensor, Tensor, Tensor>
{
    private readonly Linear dense;
    private readonly LayerNorm LayerNorm;

    public BertResidualOutput(int inFeatures, BertConfig c, Device? device = null, ScalarType? dtype = null) : base(nameof(BertResidualOutput))
    {
        dense = Linear(inFeatures, c.HiddenSize, device: device, dtype: dtype);
        LayerNorm = nn.LayerNorm(c.HiddenSize, c.LayerNormEps, device: device, dtype: dtype);
        RegisterComponents();
    }

    public override Tensor forward(Tensor hidden, Tensor residual)
    {
        using var scope = NewDisposeScope();
        return LayerNorm.forward(dense.forward(hidden) + residual).MoveToOuterDisposeScope();
    }
}

public sealed class BertAttention : Module<Tensor, Tensor, Tensor>
{
    private readonly BertSelfAttention self;
    private readonly BertResidualOutput output;

    public BertAttention(BertConfig c, Device? device = null, ScalarType? dtype = null) : base(nameof(BertAttention))
    {
        self = new BertSelfAttention(c, device, dtype);
        output = new BertResidualOutput(c.HiddenSize, c, device, dtype);
        RegisterComponents();
    }

    public override Tensor forward(Tensor x, Tensor additiveMask)
    {
        using var context = self.forward(x, additiveMask);
        return output.forward(context, x);
    }
}

/// <summary>FFN expansion: dense to intermediate_size then the activation.</summary>
public sealed class BertIntermediate : Module<Tensor, Tensor>
{
    private readonly Linear dense;
    private readonly Func<Tensor, Tensor> _act;

    public BertIntermediate(BertConfig c, Device? device = null, ScalarType? dtype = null) : base(nameof(BertIntermediate))
    {
        dense = Linear(c.HiddenSize, c.IntermediateSize, device: device, dtype: dtype);
        _act = Activations.Get(c.HiddenAct);
        RegisterComponents();
    }

    public override Tensor forward(Tensor x)
    {
        using var h = dense.forward(x);
        return _act(h);
    }
}

public sealed class BertLayer : Module<Tensor, Tensor, Tensor>
{
    private readonly BertAttention attention;
    private readonly BertIntermediate intermediate;
    private readonly BertResidualOutput output;

    public BertLayer(BertConfig c, Device? device = null, ScalarType? dtype = null) : base(nameof(BertLayer))
    {
        attention = new BertAttention(c, device, dtype);
        intermediate = new BertIntermediate(c, device, dtype);
        output = new BertResidualOutput(c.IntermediateSize, c, device, dtype);
        RegisterComponents();
    }

    public override Tensor forward(Tensor x, Tensor additiveMask)
    {
        using var scope = NewDisposeScope();
        var a = attention.forward(x, additiveMask);
        return output.forward(intermediate.forward(a), a).MoveToOuterDisposeScope();
    }
}

public sealed class BertEncoder : Module<Tensor, Tensor, Tensor>
{
    private readonly ModuleList<BertLayer> layer;

    public BertEncoder(BertConfig c, Device? device = null, ScalarType? dtype = null) : base(nameof(BertEncoder))
    {
        layer = ModuleList(Enumerable.Range(0, c.NumHiddenLayers).Select(_ => new BertLayer(c, device, dtype)).ToArray());
        RegisterComponents();
    }

    public override Tensor forward(Tensor x, Tensor additiveMask)
    {
        var h = x.alias();
        foreach (var l in layer)
        {
            var next = l.forward(h, additiveMask);
            h.Dispose();
            h = next;
        }
        return h;
    }
}

/// <summary>tanh(dense(first token)): BERT's pooled output (not used by Hunyuan-DiT, present in its checkpoint).</summary>
public sealed class BertPooler : Module<Tensor, Tensor>
{
    private readonly Linear dense;

    public BertPooler(BertConfig c, Device? device = null, ScalarType? dtype = null) : base(nameof(BertPooler))
    {
        dense = Linear(c.HiddenSize, c.HiddenSize, device: device, dtype: dtype);
        RegisterComponents();
    }

    public override Tensor forward(Tensor lastHiddenState)
    {
        using var first = lastHiddenState[.., 0];
        using var d = dense.forward(first);
        return d.tanh();
    }
}

/// <summary>
/// BERT encoder (transformers BertModel). <see cref="forward"/> returns last_hidden_state [B, L, hidden_size];
/// <see cref="Pool"/> gives the pooled output when the model has a pooler.
/// </summary>
public sealed class BertModel : Module<Tensor, Tensor, Tensor>
{
    private readonly BertEmbeddings embeddings;
    private readonly BertEncoder encoder;
    private readonly BertPooler? pooler;

    /// <param name="device">where parameters are created; <c>torch.META</c> builds the structure without memory.</param>
    public BertModel(BertConfig config, Device? device = null, ScalarType? dtype = null) : base(nameof(BertModel))
    {
        Config = config.Validated();
        embeddings = new BertEmbeddings(config, device, dtype);
        encoder = new BertEncoder(config, device, dtype);
        if (config.AddPoolingLayer) pooler = new BertPooler(config, device, dtype);
        RegisterComponents();
    }

    public BertConfig Config { get; }
    public bool HasPooler => pooler is not null;

    /// <summary>
    /// Loads a transformers BertModel folder (config.json + model.safetensors, or shards), strictly. The pooler is built
    /// when the weights have one; two legacy layouts are accepted: keys prefixed "bert." (Tencent's original
    /// checkpoint) and the "embeddings.position_ids" buffer older transformers versions saved.
    /// </summary>
    public static BertModel FromPretrained(string componentDirectory, Device? device = null, ScalarType? dtype = null)
    {
        var config = BertConfig.Load(componentDirectory);
        var keys = PretrainedComponent.WeightKeys(componentDirectory).Select(StripLegacyPrefix).ToHashSet();
        var model = new BertModel(config with { AddPoolingLayer = keys.Contains("pooler.dense.weight") }, device, dtype);
        DiffusersComponent.LoadStateDict(model, componentDirectory, options: new StateDictLoadOptions
        {
            MapFileKey = key => StripLegacyPrefix(key) is var k && k == "embeddings.position_ids" ? null : k,
        });
        model.eval();
        return model;
    }

    /// <summary>Writes config.json + model.safetensors in the transformers layout.</summary>
    public void SavePretrained(string componentDirectory, ScalarType? dtype = null) =>
        DiffusersComponent.Save(this, componentDirectory,
            PretrainedComponent.ToJson(Config, ("architectures", new JsonArray("BertModel")), ("model_type", "bert")),
            weightsFileName: "model.safetensors", dtype: dtype);

    private static string StripLegacyPrefix(string key) => key.StartsWith("bert.", StringComparison.Ordinal) ? key[5..] : key;

    /// <param name="inputIds">[B, L] int64, L &lt;= max_position_embeddings</param>
    /// <param name="attentionMask">[B, L] 1 = token, 0 = padding</param>
    /// <returns>last_hidden_state [B, L, hidden_size]</returns>
    public override Tensor forward(Tensor inputIds, Tensor attentionMask) => forward(inputIds, attentionMask, null);

    public Tensor forward(Tensor inputIds, Tensor attentionMask, Tensor? tokenTypeIds)
    {
        if (inputIds.dim() != 2 || !attentionMask.shape.SequenceEqual(inputIds.shape))
            throw new ArgumentException($"BERT: input_ids [B, L] and attention_mask of the same shape expected, got [{string.Join(", ", inputIds.shape)}] and [{string.Join(", ", attentionMask.shape)}]");
        if (inputIds.shape[1] > Config.MaxPositionEmbeddings)
            throw new ArgumentException($"BERT: sequence length {inputIds.shape[1]} exceeds max_position_embeddings {Config.MaxPositionEmbeddings}");
        using var scope = NewDisposeScope();
        var types = tokenTypeIds ?? zeros_like(inputIds);
        var h = embeddings.forward(inputIds, types);
        var mask = Activations.AdditiveMask(attentionMask, h.dtype);
        return encoder.forward(h, mask).MoveToOuterDisposeScope();
    }

    /// <summary>pooler_output [B, hidden_size] from a last_hidden_state.</summary>
    public Tensor Pool(Tensor lastHiddenState) =>
        (pooler ?? throw new InvalidOperationException("this BERT model has no pooler (pooler.dense is not in its weights)")).forward(lastHiddenState);
}
