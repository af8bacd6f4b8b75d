using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace BatchRender.Model.Embeddings;

/// <summary>
/// Pools the raw T5 states into one vector: the token mean is prepended, a learned position table added, and the mean
/// token attends (one query, <c>numHeads</c> heads) over all L+1 tokens, projected by c_proj. The text mask is not used:
/// padding tokens take part in the mean and the attention, as in the reference.
/// </summary>
public sealed class HunyuanDiTAttentionPool : nn.Module<Tensor, Tensor>
{
    private readonly int numHeads;
    public Parameter positional_embedding;
    public nn.Module<Tensor, Tensor> k_proj;
    public nn.Module<Tensor, Tensor> q_proj;
    public nn.Module<Tensor, Tensor> v_proj;
    public nn.Module<Tensor, Tensor> c_proj;

    public HunyuanDiTAttentionPool(long spacialDim, long embedDim, int numHeads, long outputDim, Device? device = null, ScalarType? dtype = null)
        : base(nameof(HunyuanDiTAttentionPool))
    {
        this.numHeads = numHeads;
        using (torch.no_grad())
            positional_embedding = new Parameter(torch.randn([spacialDim + 1, embedDim], dtype: dtype, device: device).div_(Math.Sqrt(embedDim)));
        k_proj = nn.Linear(embedDim, embedDim, device: device, dtype: dtype);
        q_proj = nn.Linear(embedDim, embedDim, device: device, dtype: dtype);
        v_proj = nn.Linear(embedDim, embedDim, device: device, dtype: dtype);
        c_proj = nn.Linear(embedDim, outputDim, device: device, dtype: dtype);
        RegisterComponents();
    }

    /// <param name="x">[B, L, C]</param>
    /// <returns>[B, outputDim]</returns>
    public override Tensor forward(Tensor x)
    {
        using var scope = torch.NewDisposeScope();
        long b = x.shape[0], c = x.shape[2], headDim = c / numHeads;
        var seq = torch.cat([x.mean([1], keepdim: true), x], 1);                  // [B, L+1, C]
        seq = seq + positional_embedding.to(seq.dtype).unsqueeze(0);
        var q = q_proj.call(seq.narrow(1, 0, 1)).view(b, 1, numHeads, headDim).transpose(1, 2);   // [B, h, 1, hd]
        var k = k_proj.call(seq).view(b, -1, numHeads, headDim).transpose(1, 2);                  // [B, h, L+1, hd]
        var v = v_proj.call(seq).view(b, -1, numHeads, headDim).transpose(1, 2);
        var attended = nn.functional.scaled_dot_product_attention(q, k, v);                        // [B, h, 1, hd]
        var merged = attended.transpose(1, 2).reshape(b, c);
        return c_proj.call(merged).MoveToOuterDisposeScope();
    }
}
