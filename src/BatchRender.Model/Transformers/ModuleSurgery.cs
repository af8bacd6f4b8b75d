using BatchRender.Model.Quantization;
using TorchSharp;
using static TorchSharp.torch;

namespace BatchRender.Model.Transformers;

/// <summary>
/// Replaces a child module by its dotted state-dict path, keeping the name (and so the state-dict keys of whatever the
/// replacement registers). The swap itself is the quantizer's (field or ModuleList slot, re-registered in place).
/// </summary>
public static class ModuleSurgery
{
    /// <summary>Replaces the child at a dotted path below <paramref name="root"/> (e.g. "blocks.3.attn1.to_q", "blocks.0.ff.net.2").</summary>
    public static void Replace(nn.Module root, string path, nn.Module<Tensor, Tensor> replacement)
    {
        int dot = path.LastIndexOf('.');
        var parent = dot < 0 ? root : Find(root, path[..dot]);
        var name = dot < 0 ? path : path[(dot + 1)..];
        var old = parent.named_children().FirstOrDefault(c => c.name == name).module
                  ?? throw new ArgumentException($"no module named '{path}'", nameof(path));
        ModelQuantizer.Replace(parent, name, old, replacement);
    }

    /// <summary>The module at a dotted path (named_modules naming).</summary>
    public static nn.Module Find(nn.Module root, string path)
    {
        foreach (var (name, module) in root.named_modules())
            if (name == path) return module;
        throw new ArgumentException($"no module named '{path}'", nameof(path));
    }
}
