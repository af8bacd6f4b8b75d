using System.Reflection;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace BatchRender.Model.Transformers;

/// <summary>
/// Replaces a child module in place, keeping its state-dict name and position: whatever holds the child gets the
/// replacement (a field of the parent, typed to accept it, e.g. <c>Module&lt;Tensor, Tensor&gt;</c>; a <c>ModuleList</c>
/// slot; a <c>Sequential</c> item), and the parent's registry entry of that name is swapped in place, since TorchSharp
/// registers children once at construction. Used to swap Linears for quantized ones.
/// </summary>
public static class ModuleSurgery
{
    private static readonly FieldInfo Registry =
        typeof(nn.Module).GetField("_internal_submodules", BindingFlags.Instance | BindingFlags.NonPublic)
        ?? throw new MissingFieldException("TorchSharp's Module._internal_submodules (TorchSharp version changed?)");

    private static readonly FieldInfo SequentialItems =
        typeof(Sequential).GetField("_modules", BindingFlags.Instance | BindingFlags.NonPublic)
        ?? throw new MissingFieldException("TorchSharp's Sequential._modules (TorchSharp version changed?)");

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
        var old = parent.named_children().FirstOrDefault(c => c.name == name).module
                  ?? throw new ArgumentException($"{parent.GetName()} has no child '{name}'", nameof(name));
        bool placed = false;
        for (var type = parent.GetType(); type is not null && type != typeof(nn.Module); type = type.BaseType)
        {
            foreach (var field in type.GetFields(BindingFlags.Instance | BindingFlags.Public | BindingFlags.NonPublic | BindingFlags.DeclaredOnly))
            {
                if (!ReferenceEquals(field.GetValue(parent), old)) continue;
                if (!field.FieldType.IsInstanceOfType(replacement))
                    throw new ArgumentException($"{parent.GetType().Name}.{field.Name} is {field.FieldType.Name}; cannot hold {replacement.GetType().Name} (declare it Module<Tensor, Tensor>)");
                field.SetValue(parent, replacement);
                placed = true;
            }
        }
        placed |= ReplaceItem(parent, old, replacement);
        if (!placed) throw new ArgumentException($"cannot find what holds {parent.GetType().Name}'s child '{name}'", nameof(name));

        var registry = (TorchSharp.Utils.OrderedDict<string, nn.Module>)Registry.GetValue(parent)!;
        if (registry.ContainsKey(name)) registry[name] = replacement;   // same name, same position
    }

    private static bool ReplaceItem(nn.Module parent, nn.Module old, nn.Module<Tensor, Tensor> replacement)
    {
        if (parent is Sequential)
        {
            // Sequential's forward walks its private item list.
            var items = (System.Collections.IList)SequentialItems.GetValue(parent)!;
            var at = IndexOf(items, old);
            if (at < 0) return false;
            items[at] = replacement;
            return true;
        }
        var type = parent.GetType();
        if (!type.IsGenericType || type.GetGenericTypeDefinition() != typeof(ModuleList<>)) return false;
        var index = IndexOf((System.Collections.IEnumerable)parent, old);
        if (index < 0) return false;
        var itemType = type.GetGenericArguments()[0];
        if (!itemType.IsInstanceOfType(replacement))
            throw new ArgumentException($"a ModuleList<{itemType.Name}> cannot hold {replacement.GetType().Name}");
        type.GetProperty("Item")!.SetValue(parent, replacement, [index]);
        return true;
    }

    private static int IndexOf(System.Collections.IEnumerable items, nn.Module module)
    {
        var i = 0;
        foreach (var item in items)
        {
            if (ReferenceEquals(item, module)) return i;
            i++;
        }
        return -1;
    }
}
