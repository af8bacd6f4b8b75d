using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace BatchRender.Model.TextEncoders;

internal static class EmbeddingTable
{
    /// <summary>
    /// nn.Embedding with torch's N(0, 1) initialisation (the padding row zeroed), its table allocated directly on
    /// <paramref name="device"/>. TorchSharp's nn.Embedding and Embedding_from_pretrained both touch the whole table on
    /// the CPU (10-30 s for mT5's 250112 x 2048 even for the meta device), so the module is made with one row and its
    /// weight replaced. The padding index only affects training gradients, so it is not passed on.
    /// </summary>
    public static Embedding Create(long count, long dim, Device? device, ScalarType? dtype, long? paddingIdx = null)
    {
        var weight = empty([count, dim], dtype ?? ScalarType.Float32, device);
        if (weight.device_type != DeviceType.META)
        {
            using var _ = no_grad();
            weight.normal_();
            if (paddingIdx is { } p) weight[p].zero_();
        }
        var embedding = nn.Embedding(1, dim, device: device, dtype: dtype);
        embedding.weight = new Parameter(weight);
        return embedding;
    }
}
