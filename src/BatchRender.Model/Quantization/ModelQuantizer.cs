using System.Reflection;
using BatchRender.Model.Pipelines;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;
using static TorchSharp.torch.nn;
using TorchModule = TorchSharp.torch.nn.Module;

namespace BatchRender.Model.Quantization;

/// <summary>Which Linear layers a <see cref="QuantizationMode"/> applies to, and how.</summary>
public sealed record QuantizationOptions
{
    /// <summary>Selects Linears by their dotted name in the module tree (e.g. "blocks.3.attn1.to_q").</summary>
    public Func<string, bool> Include { get; init; } = TransformerBlocks;
    /// <summary>int8 kernel; null = <see cref="Int8Kernels.ChooseFor"/> the layers' device.</summary>
    public Int8KernelKind? Kernel { get; init; }
    /// <summary>Fuse the groups an <see cref="IFusableProjections"/> module declares (one GEMM for q, k, v).</summary>
    public bool FuseProjections { get; init; } = true;

    /// <summary>The Linears of the DiT's transformer blocks (the bulk of its weights and FLOPs).</summary>
    public static bool TransformerBlocks(string name) => name.StartsWith("blocks.", StringComparison.Ordinal);
    /// <summary>Every Linear (for the text encoders, when the load options ask for them).</summary>
    public static bool AllLinears(string name) => true;
}

/// <summary>What <see cref="ModelQuantizer.Apply"/> did.</summary>
public sealed record QuantizationReport(
    QuantizationMode RequestedMode,
    QuantizationMode AppliedMode,
    Int8KernelKind? Kernel,
    IReadOnlyList<string> ReplacedLinears,
    IReadOnlyList<string> FusedGroups,
    long QuantizedBytes,
    long Fp32Bytes,
    string? Warning)
{
    /// <summary>Quantized Linear bytes / the same Linears' fp32 bytes (0 when nothing was replaced).</summary>
    public double MemoryRatio => Fp32Bytes == 0 ? 0 : (double)QuantizedBytes / Fp32Bytes;
}

/// <summary>
/// Applies a <see cref="QuantizationMode"/> to a module tree by swapping Linear layers for quantized modules in place:
/// the field that holds each Linear (typed <c>Module&lt;Tensor, Tensor&gt;</c>; a <c>ModuleList</c> slot or a
/// <c>Sequential</c> item also works) gets the new module, which is registered under the same name, and the fp32
/// Linear is disposed.
/// </summary>
public static class ModelQuantizer
{
    public static QuantizationReport Apply(TorchModule root, QuantizationMode mode, QuantizationOptions? options = null)
    {
        options ??= new QuantizationOptions();
        var state = new WalkState(options);
        switch (mode)
        {
            case QuantizationMode.None:
                return state.Report(mode, mode, null, null);
            case QuantizationMode.BFloat16:
            {
                var device = FirstDevice(root);
                if (device.type == DeviceType.CPU && !CpuFeatures.HasNativeBFloat16)
                    return state.Report(mode, QuantizationMode.None, null,
                        "bf16 requested but this CPU has no native bf16 (no avx512_bf16/amx_bf16 flag): libtorch would emulate it ~100x slower than fp32, so the model stays fp32");
                Walk(root, "", state, lin => new BFloat16Linear(lin), null);
                return state.Report(mode, mode, null, null);
            }
            case QuantizationMode.Int8Dynamic:
            {
                var kernel = options.Kernel ?? Int8Kernels.ChooseFor(FirstDevice(root));
                Walk(root, "", state, lin => new DynamicQuantizedLinear(lin, kernel), kernel);
                return state.Report(mode, mode, kernel, null);
            }
            default:
                throw new ArgumentOutOfRangeException(nameof(mode));
        }
    }

    private sealed class WalkState(QuantizationOptions options)
    {
        public QuantizationOptions Options { get; } = options;
        public List<string> Replaced { get; } = [];
        public List<string> Fused { get; } = [];
        public long QuantizedBytes, Fp32Bytes;

        public QuantizationReport Report(QuantizationMode requested, QuantizationMode applied, Int8KernelKind? kernel, string? warning) =>
            new(requested, applied, kernel, Replaced, Fused, QuantizedBytes, Fp32Bytes, warning);
    }

    private static void Walk(TorchModule parent, string prefix, WalkState state, Func<Linear, TorchModule> quantize, Int8KernelKind? fuseKernel)
    {
        if (fuseKernel is { } kernel && state.Options.FuseProjections && parent is IFusableProjections fusable)
            FuseGroups(parent, fusable, prefix, state, kernel);

        foreach (var (name, child) in parent.named_children().ToList())
        {
            var fullName = prefix.Length == 0 ? name : $"{prefix}.{name}";
            if (child is Linear linear)
            {
                if (!state.Options.Include(fullName)) continue;
                state.Fp32Bytes += Fp32Bytes(linear);
                var replacement = quantize(linear);
                state.QuantizedBytes += BytesOf(replacement);
                Replace(parent, name, linear, replacement);
                state.Replaced.Add(fullName);
                linear.Dispose();
            }
            else
            {
                Walk(child, fullName, state, quantize, fuseKernel);
            }
        }
    }

    private static void FuseGroups(TorchModule parent, IFusableProjections fusable, string prefix, WalkState state, Int8KernelKind kernel)
    {
        var children = parent.named_children().ToDictionary(c => c.Item1, c => c.Item2);
        foreach (var group in fusable.FusableGroups)
        {
            var names = group.Select(n => prefix.Length == 0 ? n : $"{prefix}.{n}").ToList();
            var linears = group.Select(n => children.GetValueOrDefault(n) as Linear).ToList();
            // All or nothing: a group is fused only when every member is a Linear the filter selects.
            if (linears.Any(l => l is null) || !names.All(state.Options.Include)) continue;

            var fused = new DynamicQuantizedFusedLinear(linears!, kernel);
            fusable.SetFusedProjection(group, fused);
            state.QuantizedBytes += fused.Bytes;
            for (int i = 0; i < group.Count; i++)
            {
                state.Fp32Bytes += Fp32Bytes(linears[i]!);
                Replace(parent, group[i], linears[i]!, new FusedProjectionSlice(fused, i));
                state.Replaced.Add(names[i]);
                linears[i]!.Dispose();
            }
            state.Fused.Add(string.Join("+", names));
        }
    }

    private static long Fp32Bytes(Linear l) => 4 * (l.weight!.NumberOfElements + (l.bias?.NumberOfElements ?? 0));

    private static long BytesOf(TorchModule m) => m switch
    {
        DynamicQuantizedLinear q => q.Bytes,
        BFloat16Linear b => b.Bytes,
        _ => 0,
    };

    private static Device FirstDevice(TorchModule root) =>
        root.parameters().FirstOrDefault()?.device ?? CPU;

    /// <summary>Puts <paramref name="replacement"/> where <paramref name="parent"/> holds <paramref name="old"/>, under the same name.</summary>
    internal static void Replace(TorchModule parent, string name, TorchModule old, TorchModule replacement)
    {
        bool placed = false;
        for (var type = parent.GetType(); type is not null && type != typeof(TorchModule); type = type.BaseType)
        {
            foreach (var field in type.GetFields(BindingFlags.Instance | BindingFlags.Public | BindingFlags.NonPublic | BindingFlags.DeclaredOnly))
            {
                if (!ReferenceEquals(field.GetValue(parent), old)) continue;
                if (!field.FieldType.IsInstanceOfType(replacement))
                    throw new InvalidOperationException(
                        $"{parent.GetType().Name}.{field.Name} (module '{name}') is declared {field.FieldType.Name}, which cannot hold a {replacement.GetType().Name}: declare it Module<Tensor, Tensor> so quantization can swap it");
                field.SetValue(parent, replacement);
                placed = true;
            }
        }
        placed |= ReplaceInContainer(parent, old, replacement);
        if (!placed)
            throw new InvalidOperationException($"cannot find the field of {parent.GetType().Name} that holds module '{name}'");

        var registered = (TorchSharp.Utils.OrderedDict<string, TorchModule>)typeof(TorchModule)
            .GetField("_internal_submodules", BindingFlags.Instance | BindingFlags.NonPublic)!.GetValue(parent)!;
        if (registered.ContainsKey(name)) registered[name] = replacement;   // same name, same position
    }

    private static bool ReplaceInContainer(TorchModule parent, TorchModule old, TorchModule replacement)
    {
        if (parent is Sequential)
        {
            // Sequential keeps its items in a private list that its forward walks.
            var items = (System.Collections.IList)typeof(Sequential).GetField("_modules", BindingFlags.Instance | BindingFlags.NonPublic)!.GetValue(parent)!;
            return SetInList(items, old, replacement, parent);
        }
        var type = parent.GetType();
        if (type.IsGenericType && type.GetGenericTypeDefinition() == typeof(ModuleList<>))
            return SetInList((System.Collections.IList)parent, old, replacement, parent);
        return false;
    }

    private static bool SetInList(System.Collections.IList list, TorchModule old, TorchModule replacement, TorchModule parent)
    {
        var index = -1;
        for (int i = 0; i < list.Count; i++) if (ReferenceEquals(list[i], old)) { index = i; break; }
        if (index < 0) return false;
        try { list[index] = replacement; }
        catch (ArgumentException e)
        {
            throw new InvalidOperationException($"{parent.GetType().Name} holds items of a type that cannot hold a {replacement.GetType().Name}", e);
        }
        return true;
    }
}

/// <summary>A Linear computed in bf16 (weights stored in bf16), input and output in the caller's dtype.</summary>
public sealed class BFloat16Linear : Module<Tensor, Tensor>
{
    private readonly Tensor _weight;
    private readonly Tensor? _bias;

    public BFloat16Linear(Linear linear) : base(nameof(BFloat16Linear))
    {
        _weight = linear.weight!.detach().to(ScalarType.BFloat16).contiguous();
        _bias = linear.bias?.detach().to(ScalarType.BFloat16).contiguous();
    }

    public long Bytes => 2 * (_weight.NumberOfElements + (_bias?.NumberOfElements ?? 0));

    public override Tensor forward(Tensor x)
    {
        using var xb = x.to(ScalarType.BFloat16);
        using var y = torch.nn.functional.linear(xb, _weight, _bias);
        return y.to(x.dtype);
    }

    protected override void Dispose(bool disposing)
    {
        if (disposing) { _weight.Dispose(); _bias?.Dispose(); }
        base.Dispose(disposing);
    }
}
