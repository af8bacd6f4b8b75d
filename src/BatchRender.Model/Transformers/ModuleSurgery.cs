using System.Collections;
using System.Reflection;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace BatchRender.Model.Transformers;

/// <summary>
/// Replaces a child module in place, keeping its state-dict name and position: sets the field of that name, or the slot
/// of a Sequential / ModuleList, and updates the registration (TorchSharp registers children once, at construction).
/// Used to swap Linears for quantized ones.
/// </summary>
public static class ModuleSurgery
{
    private static readonly FieldInfo RegisteredChildren =
        typeof(nn.Module).GetField("_internal_submodules", BindingFlags.Instance | BindingFlags.NonPublic)
        ?? throw new MissingFieldException("TorchSharp's Module._internal_submodules (ModuleSurgery needs it)");

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
            throw new ArgumentException($"{parent.GetType().Name} has no child '{name}'", nameof(name));
        switch (parent)
        {
            case Sequential sequential:
                ReplaceInSequential(sequential, name, replacement);
                break;
            case ModuleList<nn.Module<Tensor, Tensor>> list when int.TryParse(name, out int index):
                list[index] = replacement;
                break;
            default:
                var field = parent.GetType().GetField(name, BindingFlags.Instance | BindingFlags.Public | BindingFlags.NonPublic)
                            ?? throw new ArgumentException($"{parent.GetType().Name} has no field '{name}' to replace", nameof(name));
                if (!field.FieldType.IsInstanceOfType(replacement))
                    throw new ArgumentException($"{parent.GetType().Name}.{name} is declared {field.FieldType.Name}, which cannot hold a {replacement.GetType().Name}: declare it Module<Tensor, Tensor>");
                field.SetValue(parent, replacement);
                break;
        }
        var registered = (TorchSharp.Utils.OrderedDict<string, nn.Module>?)RegisteredChildren.GetValue(parent);
        if (registered is not null && registered.ContainsKey(name))
        {
            registered[name] = replacement;            // same name, same position in the state dict
        }
        else if (parent is not Sequential)
        {
            parent.register_module(name, null!);
            parent.register_module(name, replacement);
        }
    }

    /// <summary>Sequential keeps its items (and names) in private lists that its forward and named_children walk.</summary>
    private static void ReplaceInSequential(Sequential sequential, string name, nn.Module<Tensor, Tensor> replacement)
    {
        var flags = BindingFlags.Instance | BindingFlags.NonPublic;
        var names = (IList<string>)typeof(Sequential).GetField("_names", flags)!.GetValue(sequential)!;
        var items = (IList)typeof(Sequential).GetField("_modules", flags)!.GetValue(sequential)!;
        int index = names.IndexOf(name);
        items[index] = replacement;
    }
}
