using System.Reflection;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace BatchRender.Model.Transformers;

/// <summary>
/// Replaces a child module in place, keeping its state-dict name: sets the field of that name (or the ModuleList slot)
/// and re-registers it, since TorchSharp registers children once at construction. Used to swap Linears for quantized ones.
/// </summary>
public static class ModuleSurgery
{
    /// <summary>Replaces the child at a dotted path below <paramref name="root"/> (e.g. "blocks.3.attn1.to_q", "blocks.0.ff.net.2").</summary>
    public static void Replace(nn.Module root, string path, nn.Module<Tensor, Tensor> replacement)
    {
        int dot = path.LastIndexOf('.');
        var parent = dot < 0 ? root : Find(root, path[..dot]);
        ReplaceChild(parent, dot < 0 ? path : path[(dot + 1)..], replacement);
    }

    /// <summary>The module at a dotted path (named_modules naming).</summary>
    public static nn.Module Find(nn.Module root, string path)
    {
        foreach (var (name, module) in root.named_modules())
            if (name == path) return module;
        throw new ArgumentException($"no module named '{path}'", nameof(path));
    }

    public static void ReplaceChild(nn.Module parent, string name, nn.Module<Tensor, Tensor> replacement)
    {
        if (!parent.named_children().Any(c => c.name == name))
            throw new ArgumentException($"{parent.GetName()} has no child '{name}'", nameof(name));
        if (parent is ModuleList<nn.Module<Tensor, Tensor>> list && int.TryParse(name, out int index))
        {
            list[index] = replacement;
        }
        else
        {
            var field = parent.GetType().GetField(name, BindingFlags.Instance | BindingFlags.Public | BindingFlags.NonPublic)
                        ?? throw new ArgumentException($"{parent.GetType().Name} has no field '{name}' to replace", nameof(name));
            if (!field.FieldType.IsAssignableFrom(replacement.GetType()))
                throw new ArgumentException($"{parent.GetType().Name}.{name} is {field.FieldType.Name}; cannot hold {replacement.GetType().Name}");
            field.SetValue(parent, replacement);
        }
        parent.register_module(name, null!);         // unregisters the old child
        parent.register_module(name, replacement);
    }
}
