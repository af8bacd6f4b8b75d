using TorchSharp;
using static TorchSharp.torch;
using F = TorchSharp.torch.nn.functional;

namespace BatchRender.Model.TextEncoders;

/// <summary>transformers' ACT2FN names used by the text encoders.</summary>
internal static class Activations
{
    public static Func<Tensor, Tensor> Get(string name) => name switch
    {
        "gelu" => x => F.gelu(x),                                              // exact (erf)
        "gelu_new" or "gelu_pytorch_tanh" => x => F.gelu(x, TorchSharp.Modules.GELU.Approximate.tanh), // tanh approximation
        "relu" => x => F.relu(x),
        "silu" or "swish" => x => F.silu(x),
        _ => throw new ArgumentException($"activation '{name}' is not supported"),
    };

    /// <summary>transformers' extended attention mask: 0 where attended, the dtype's most negative finite value where
    /// masked (not -inf, so a fully masked row stays finite). [B, L] of 1/0 -> [B, 1, 1, L] additive.</summary>
    public static Tensor AdditiveMask(Tensor attentionMask, ScalarType dtype)
    {
        double min = dtype switch
        {
            ScalarType.Float16 => -65504.0,
            ScalarType.BFloat16 => -3.3895313892515355e38,
            ScalarType.Float64 => double.MinValue,
            _ => float.MinValue,
        };
        var keep = attentionMask.to_type(dtype)[.., TensorIndex.None, TensorIndex.None, ..];
        return (1.0 - keep) * min;
    }
}
