using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace BatchRender.Model.Embeddings;

/// <summary>
/// Image to patch tokens: Conv2d(kernel = stride = patch) then flatten, [B, C, H, W] -> [B, (H/p)*(W/p), D], row-major tokens.
/// Hunyuan-DiT uses no absolute position embedding (pos_embed_type None): positions come from RoPE only.
/// </summary>
public sealed class PatchEmbed : nn.Module<Tensor, Tensor>
{
    public Conv2d proj;
    public int PatchSize { get; }

    public PatchEmbed(int patchSize, long inChannels, long embedDim, Device? device = null, ScalarType? dtype = null)
        : base(nameof(PatchEmbed))
    {
        PatchSize = patchSize;
        proj = nn.Conv2d(inChannels, embedDim, kernel_size: patchSize, stride: patchSize, bias: true, device: device, dtype: dtype);
        RegisterComponents();
    }

    public override Tensor forward(Tensor latent)
    {
        using var scope = torch.NewDisposeScope();
        return proj.call(latent).flatten(2).transpose(1, 2).MoveToOuterDisposeScope();   // [B, N, D]
    }
}
