using BatchRender.Model.Quantization;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;
using static TorchSharp.torch.nn;

namespace BatchRender.Model.Tests.Quantization;

// A small module tree shaped like the DiT (names as diffusers'): blocks.{i}.norm1.linear, attn1.to_q/to_k/to_v/to_out.0,
// ff.net.0 / ff.net.2 in a Sequential, Linears outside the blocks that must stay fp32.

internal sealed class StandInAttention : Module<Tensor, Tensor>, IFusableProjections
{
    public Module<Tensor, Tensor> to_q, to_k, to_v;
    public ModuleList<Module<Tensor, Tensor>> to_out;
    private DynamicQuantizedFusedLinear? _qkv;
    public int FusedCalls { get; private set; }

    public StandInAttention(long dim) : base(nameof(StandInAttention))
    {
        to_q = Linear(dim, dim); to_k = Linear(dim, dim); to_v = Linear(dim, dim);
        to_out = new ModuleList<Module<Tensor, Tensor>>(Linear(dim, dim), Dropout(0.0));
        RegisterComponents();
    }

    public IReadOnlyList<IReadOnlyList<string>> FusableGroups { get; } = [["to_q", "to_k", "to_v"]];

    public void SetFusedProjection(IReadOnlyList<string> group, DynamicQuantizedFusedLinear fused) => _qkv = fused;

    /// <summary>The single q/k/v method: one fused GEMM when installed.</summary>
    public (Tensor Q, Tensor K, Tensor V) ProjectQkv(Tensor x)
    {
        if (_qkv is null) return (to_q.call(x), to_k.call(x), to_v.call(x));
        FusedCalls++;
        var parts = _qkv.ForwardSplit(x);
        return (parts[0], parts[1], parts[2]);
    }

    public override Tensor forward(Tensor x)   // x [B, N, D]
    {
        var (q, k, v) = ProjectQkv(x);
        var a = torch.nn.functional.scaled_dot_product_attention(q.unsqueeze(1), k.unsqueeze(1), v.unsqueeze(1)).squeeze(1);
        return to_out[1].call(to_out[0].call(a));
    }
}

internal sealed class StandInNorm : Module<Tensor, Tensor>
{
    public Module<Tensor, Tensor> linear;
    public StandInNorm(long dim) : base(nameof(StandInNorm)) { linear = Linear(dim, dim); RegisterComponents(); }
    public override Tensor forward(Tensor temb) => linear.call(torch.nn.functional.silu(temb));
}

internal sealed class StandInFeedForward : Module<Tensor, Tensor>
{
    public Sequential net;
    public StandInFeedForward(long dim, long inner) : base(nameof(StandInFeedForward))
    {
        net = Sequential(("0", Linear(dim, inner)), ("1", GELU()), ("2", Linear(inner, dim)));
        RegisterComponents();
    }
    public override Tensor forward(Tensor x) => net.call(x);
}

internal sealed class StandInBlock : Module<Tensor, Tensor, Tensor>
{
    public StandInNorm norm1;
    public LayerNorm norm2;
    public StandInAttention attn1;
    public StandInFeedForward ff;

    public StandInBlock(long dim) : base(nameof(StandInBlock))
    {
        norm1 = new StandInNorm(dim); norm2 = LayerNorm(dim); attn1 = new StandInAttention(dim); ff = new StandInFeedForward(dim, 4 * dim);
        RegisterComponents();
    }

    public override Tensor forward(Tensor x, Tensor temb)
    {
        x = x + attn1.call(x + norm1.call(temb).unsqueeze(1));
        return x + ff.call(norm2.call(x));
    }
}

internal sealed class StandInModel : Module<Tensor, Tensor, Tensor>
{
    public Module<Tensor, Tensor> proj_in;
    public ModuleList<StandInBlock> blocks;
    public Module<Tensor, Tensor> proj_out;

    public StandInModel(long inDim = 24, long dim = 128, int layers = 2) : base(nameof(StandInModel))
    {
        proj_in = Linear(inDim, dim);
        blocks = new ModuleList<StandInBlock>(Enumerable.Range(0, layers).Select(_ => new StandInBlock(dim)).ToArray());
        proj_out = Linear(dim, inDim);
        RegisterComponents();
    }

    public override Tensor forward(Tensor x, Tensor temb)
    {
        var h = proj_in.call(x);
        foreach (var block in blocks) h = block.call(h, temb);
        return proj_out.call(h);
    }

    /// <summary>The model for a seed (deterministic init).</summary>
    public static StandInModel Create(int seed, int layers = 2)
    {
        torch.manual_seed(seed);
        var model = new StandInModel(layers: layers);
        model.eval();
        return model;
    }

    public static (Tensor X, Tensor Temb) Inputs(int seed)
    {
        var gen = new Generator((ulong)seed);
        return (torch.randn(2, 40, 24, generator: gen), torch.randn(2, 128, generator: gen));
    }
}
