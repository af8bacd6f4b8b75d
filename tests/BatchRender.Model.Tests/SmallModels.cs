using BatchRender.Model.Configuration;
using BatchRender.Model.Transformers;
using TorchSharp;
using static TorchSharp.torch;

namespace BatchRender.Model.Tests;

/// <summary>Tiny configs of the real architecture, and random inputs for them.</summary>
public static class SmallModels
{
    public static HunyuanDiTConfig Config(int layers = 4, bool v12 = true, bool framePhase = false, bool framePhaseToken = false,
                                          bool framePhaseTokenText = false) => new()
    {
        NumAttentionHeads = 2, AttentionHeadDim = 16, HiddenSize = 32, InChannels = 4, PatchSize = 2, SampleSize = 8,
        NumLayers = layers, MlpRatio = 2.5, CrossAttentionDim = 24, CrossAttentionDimT5 = 40, PooledProjectionDim = 20,
        TextLen = 5, TextLenT5 = 7, UseStyleCondAndImageMetaSize = !v12, FramePhaseEmbedding = framePhase, FramePhaseToken = framePhaseToken,
        FramePhaseTokenText = framePhaseTokenText,
    };

    public static HunyuanDiT2DModel Build(HunyuanDiTConfig config, long seed = 0)
    {
        torch.manual_seed(seed);
        var model = new HunyuanDiT2DModel(config, TestDevice.Current);
        model.eval();
        return model;
    }

    public sealed record Inputs(Tensor X, Tensor Timestep, Tensor Bert, Tensor BertMask, Tensor T5, Tensor T5Mask,
                                (Tensor Cos, Tensor Sin) Rope, Tensor? ImageMetaSize, Tensor? Style)
    {
        public Tensor Run(HunyuanDiT2DModel model, Tensor? framePhase = null)
        {
            using var _ = torch.no_grad();
            return model.forward(X, Timestep, Bert, BertMask, T5, T5Mask, Rope, ImageMetaSize, Style, framePhase);
        }
    }

    /// <summary>Random inputs for a latent of height x width (latent pixels), batch b; masks with trailing padding.</summary>
    public static Inputs RandomInputs(HunyuanDiTConfig c, int batch = 2, int height = 8, int width = 12, long seed = 1)
    {
        var d = TestDevice.Current;
        var g = torch.manual_seed(seed);
        var x = torch.randn([batch, c.InChannels, height, width]).to(d);
        var t = torch.tensor(Enumerable.Range(0, batch).Select(i => 999f - 400f * i).ToArray()).to(d);
        var bert = torch.randn([batch, c.TextLen, c.CrossAttentionDim]).to(d);
        var t5 = torch.randn([batch, c.TextLenT5, c.CrossAttentionDimT5]).to(d);
        var bertMask = torch.zeros([batch, c.TextLen], dtype: ScalarType.Int64);
        var t5Mask = torch.zeros([batch, c.TextLenT5], dtype: ScalarType.Int64);
        for (int i = 0; i < batch; i++)
        {
            bertMask[i, TensorIndex.Slice(0, 2 + i)] = torch.tensor(1L);
            t5Mask[i, TensorIndex.Slice(0, 3 + i)] = torch.tensor(1L);
        }
        var rope = HunyuanDiT2DModel.RotaryTables(height * 8, width * 8, c.AttentionHeadDim, c.PatchSize, device: d);
        Tensor? meta = null, style = null;
        if (c.UseStyleCondAndImageMetaSize)
        {
            meta = torch.tensor(new float[] { 1024, 1024, height * 8, width * 8, 0, 0 }).repeat(batch, 1).to(d);
            style = torch.zeros(batch, dtype: ScalarType.Int64, device: d);
        }
        return new Inputs(x, t, bert, bertMask.to(d), t5, t5Mask.to(d), rope, meta, style);
    }

    public static Tensor ToCpu(this Tensor t) => t.to(torch.CPU);
}
