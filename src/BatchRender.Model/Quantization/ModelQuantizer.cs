using BatchRender.Model.Attention;
using BatchRender.Model.Pipelines;
using BatchRender.Model.Transformers;
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
    /// <summary>Run the q/k/v projections that share an input as one int8 GEMM (int8 only).</summary>
    public bool FuseProjections { get; init; } = true;
    /// <summary>Whether the CPU computes bf16 natively; null = what /proc/cpuinfo says (<see cref="CpuFeatures"/>).</summary>
    public bool? CpuHasNativeBFloat16 { get; init; }

    /// <summary>The Linears of the DiT's transformer blocks (the bulk of its weights and FLOPs), except the long-skip
    /// Linears: their output replaces the hidden state instead of adding to the residual stream, so their int8 error
    /// reaches the output whole. Measured on the v1.2-width bench (4 blocks, the last with a skip): quantizing the one
    /// skip Linear took the forward's SNR from 37.7 to 34.4 dB (quantizing its two input halves with ranges of their
    /// own gave back only 0.3 dB); it is 6% of the full model's GEMM work.</summary>
    public static bool TransformerBlocks(string name) =>
        name.StartsWith("blocks.", StringComparison.Ordinal) && !name.EndsWith(".skip_linear", StringComparison.Ordinal);
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
/// Applies a <see cref="QuantizationMode"/> to a module tree by swapping Linear layers for quantized modules in place
/// (<see cref="ModuleSurgery.ReplaceChild"/>: the <c>Module&lt;Tensor, Tensor&gt;</c> field, <c>ModuleList</c> slot or <c>Sequential</c> item that
/// holds each Linear gets the new module under the same name), and disposing the fp32 Linear.
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
                if (device.type == DeviceType.CPU && !(options.CpuHasNativeBFloat16 ?? CpuFeatures.HasNativeBFloat16))
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

    private static void Walk(TorchModule parent, string prefix, WalkState state, Func<Linear, Module<Tensor, Tensor>> quantize, Int8KernelKind? fuseKernel)
    {
        if (fuseKernel is { } kernel && state.Options.FuseProjections && parent is HunyuanAttention attention)
            FuseProjections(attention, prefix, state, kernel);

        foreach (var (name, child) in parent.named_children().ToList())
        {
            var fullName = prefix.Length == 0 ? name : $"{prefix}.{name}";
            if (child is Linear linear)
            {
                if (!state.Options.Include(fullName)) continue;
                state.Fp32Bytes += Fp32Bytes(linear);
                var replacement = quantize(linear);
                state.QuantizedBytes += BytesOf(replacement);
                ModuleSurgery.ReplaceChild(parent, name, replacement);
                state.Replaced.Add(fullName);
                linear.Dispose();
            }
            else
            {
                Walk(child, fullName, state, quantize, fuseKernel);
            }
        }
    }

    /// <summary>
    /// One GEMM per input: q, k, v of self-attention all read the hidden states; k and v of cross-attention read the text
    /// (q reads the hidden states and is quantized alone by the walk). Installed through <see cref="HunyuanAttention.QkvProjection"/>
    /// and <see cref="HunyuanAttention.KvProjection"/>.
    /// </summary>
    private static void FuseProjections(HunyuanAttention attention, string prefix, WalkState state, Int8KernelKind kernel)
    {
        string[] group = attention.IsCrossAttention ? ["to_k", "to_v"] : ["to_q", "to_k", "to_v"];
        var names = group.Select(n => prefix.Length == 0 ? n : $"{prefix}.{n}").ToList();
        var children = attention.named_children().ToDictionary(c => c.name, c => c.module);
        var linears = group.Select(n => children.GetValueOrDefault(n) as Linear).ToList();
        // All or nothing: a group is fused only when every member is a Linear the filter selects.
        if (linears.Any(l => l is null) || !names.All(state.Options.Include)) return;

        var fused = new DynamicQuantizedFusedLinear(linears!, kernel);
        attention.register_module("qkv_int8", fused);   // owned (and disposed) with the attention; holds no state-dict entries
        if (attention.IsCrossAttention)
        {
            attention.KvProjection = context =>
            {
                var kv = fused.ForwardSplit(context);
                return (kv[0], kv[1]);
            };
        }
        else
        {
            attention.QkvProjection = (hidden, _) =>
            {
                var qkv = fused.ForwardSplit(hidden);
                return (qkv[0], qkv[1], qkv[2]);
            };
        }
        state.QuantizedBytes += fused.Bytes;
        for (int i = 0; i < group.Length; i++)
        {
            state.Fp32Bytes += Fp32Bytes(linears[i]!);
            ModuleSurgery.ReplaceChild(attention, group[i], new FusedProjectionSlice(fused, i));
            state.Replaced.Add(names[i]);
            linears[i]!.Dispose();
        }
        state.Fused.Add(string.Join("+", names));
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
