using BatchRender.Model.Configuration;
using BatchRender.Model.Embeddings;
using BatchRender.Model.Pipelines;
using BatchRender.Model.Quantization;
using BatchRender.Model.Transformers;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace BatchRender.Model.Tests;

public class HunyuanDiT2DModelTests
{
    private static readonly Device D = TestDevice.Current;

    [Fact]
    public void SkipBookkeeping_MatchesDiffusers_For40Layers()
    {
        var pushes = Enumerable.Range(0, 40).Where(i => HunyuanDiT2DModel.PushesSkip(i, 40)).ToList();
        var pops = Enumerable.Range(0, 40).Where(i => HunyuanDiT2DModel.PopsSkip(i, 40)).ToList();
        Assert.Equal(Enumerable.Range(0, 19), pushes);    // blocks 0..18 store their output
        Assert.Equal(Enumerable.Range(21, 19), pops);     // blocks 21..39 consume one (19 and 20 neither)
        var model = new HunyuanDiT2DModel(HunyuanDiTConfig.V12, torch.device("meta"));
        Assert.Equal(pops, Enumerable.Range(0, 40).Where(i => model.blocks[i].HasSkip));
    }

    [Fact]
    public void Forward_PairsSkipsLastInFirstOut()
    {
        // 6 layers: blocks 0, 1 push; blocks 4, 5 pop: block 4 <- block 1, block 5 <- block 0.
        var config = SmallModels.Config(layers: 6);
        var model = SmallModels.Build(config);
        var inputs = SmallModels.RandomInputs(config);
        var output = inputs.Run(model);

        using var _ = torch.no_grad();
        var h = model.pos_embed.call(inputs.X);
        var temb = model.time_extra_emb.forward(inputs.Timestep, inputs.T5, null, null, ScalarType.Float32);
        var text = model.TextSequence(inputs.Bert, inputs.BertMask, inputs.T5, inputs.T5Mask);
        var outs = new Tensor[6];
        for (int i = 0; i < 6; i++)
        {
            Tensor? skip = i switch { 4 => outs[1], 5 => outs[0], _ => null };
            h = outs[i] = model.blocks[i].forward(h, text, temb, inputs.Rope, skip);
        }
        h = model.proj_out.call(model.norm_out.forward(h, temb));
        long b = inputs.X.shape[0], gh = inputs.X.shape[2] / 2, gw = inputs.X.shape[3] / 2;
        var expected = h.reshape(b, gh, gw, 2, 2, 8).permute(0, 5, 1, 3, 2, 4).reshape(b, 8, gh * 2, gw * 2);
        Assert.True((expected - output).abs().max().item<float>() < 1e-5);
    }

    [Theory]
    [InlineData(false, false)]
    [InlineData(true, false)]
    [InlineData(false, true)]
    [InlineData(true, true)]
    public void A_prepared_text_serves_every_timestep_as_the_full_forward_does(bool int8, bool phaseToken)
    {
        // What a render computes once (cross-attention keys and values, temb's text part) gives the outputs of the
        // full forward at every step, fp32 and int8 (fused k/v of cross-attention) alike.
        var config = SmallModels.Config(framePhase: true, framePhaseToken: phaseToken);
        var model = SmallModels.Build(config);
        if (int8) ModelQuantizer.Apply(model, QuantizationMode.Int8Dynamic);
        var inputs = SmallModels.RandomInputs(config);
        using var _ = torch.no_grad();
        var phase = torch.tensor(new[] { 0.25f, 0.75f }).to(D);
        using var prepared = model.PrepareText(inputs.Bert, inputs.BertMask, inputs.T5, inputs.T5Mask, framePhase: phase);
        foreach (var t in new[] { 999f, 500f, 1f })
        {
            var timestep = torch.full(2, t, dtype: ScalarType.Float32).to(D);
            var full = model.forward(inputs.X, timestep, inputs.Bert, inputs.BertMask, inputs.T5, inputs.T5Mask, inputs.Rope, framePhase: phase);
            var step = model.forward(inputs.X, timestep, prepared, inputs.Rope);
            Assert.True((full - step).abs().max().item<float>() < 1e-5, $"t = {t}");
        }
        var other = SmallModels.RandomInputs(config, batch: 3);
        Assert.Throws<ArgumentException>(() => model.forward(other.X, other.Timestep, prepared, other.Rope));   // batch of 3 vs 2
    }

    [Fact]
    public void TextSequence_ReplacesMaskedPositionsWithTheirLearnedPaddingRows()
    {
        var config = SmallModels.Config();
        var model = SmallModels.Build(config);
        var inputs = SmallModels.RandomInputs(config, batch: 2);
        using var _ = torch.no_grad();
        var text = model.TextSequence(inputs.Bert, inputs.BertMask, inputs.T5, inputs.T5Mask).ToCpu();
        Assert.Equal([2L, config.TextLen + config.TextLenT5, config.CrossAttentionDim], text.shape);
        var projected = model.text_embedder.call(inputs.T5).ToCpu();
        var padding = model.text_embedding_padding.ToCpu();
        for (int b = 0; b < 2; b++)
        for (int j = 0; j < config.TextLen + config.TextLenT5; j++)
        {
            bool isBert = j < config.TextLen;
            bool kept = (isBert ? inputs.BertMask[b, j] : inputs.T5Mask[b, j - config.TextLen]).item<long>() == 1;
            var expected = !kept ? padding[j] : isBert ? inputs.Bert.ToCpu()[b, j] : projected[b, j - config.TextLen];
            Assert.True(expected.allclose(text[b, j], rtol: 0, atol: 1e-6), $"sample {b} position {j} (kept {kept})");
        }
    }

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public void Forward_IsFiniteDeterministic_AndBatchItemsAreIndependent(bool v12)
    {
        var config = SmallModels.Config(v12: v12);
        var model = SmallModels.Build(config);
        var inputs = SmallModels.RandomInputs(config, batch: 2, height: 8, width: 12);
        var a = inputs.Run(model);
        Assert.Equal([2L, 8, 8, 12], a.shape);
        Assert.True(a.isfinite().all().item<bool>());
        Assert.True(a.eq(inputs.Run(model)).all().item<bool>());   // bit-identical on a repeat

        // The second sample alone gives the same result as inside the batch (no cross-sample mixing).
        Tensor? Second(Tensor? t) => t?[1..2];
        var alone = inputs with
        {
            X = inputs.X[1..2], Timestep = inputs.Timestep[1..2], Bert = inputs.Bert[1..2], BertMask = inputs.BertMask[1..2],
            T5 = inputs.T5[1..2], T5Mask = inputs.T5Mask[1..2], ImageMetaSize = Second(inputs.ImageMetaSize), Style = Second(inputs.Style),
        };
        var single = alone.Run(model);
        Assert.True((single - a[1..2]).abs().max().item<float>() < 1e-5);
    }

    [Theory]
    [InlineData(ScalarType.BFloat16)]
    [InlineData(ScalarType.Float16)]
    public void Forward_InHalfPrecision_RunsWithFp32IslandsAndStaysCloseToFp32(ScalarType dtype)
    {
        var config = SmallModels.Config();
        var model = SmallModels.Build(config);
        var inputs = SmallModels.RandomInputs(config, batch: 1);
        var reference = inputs.Run(model);
        model.to(dtype);
        Assert.Equal(dtype, model.DType);
        var half = inputs.Run(model);   // fp32 inputs are cast to the model dtype
        Assert.Equal(dtype, half.dtype);
        double error = (half.to(ScalarType.Float32) - reference).abs().max().item<float>() / reference.abs().max().item<float>();
        Assert.True(error < 0.05, $"relative error {error}");
    }

    [Fact]
    public void Forward_NonSquareLatent_UnpatchifiesTokenVectorsChannelFastest()
    {
        var config = SmallModels.Config();
        var model = SmallModels.Build(config);
        // proj_out replaced by a module that writes token * 1000 + feature index, so the output layout can be read back.
        ModuleSurgery.Replace(model, "proj_out", new PatternHead());
        var inputs = SmallModels.RandomInputs(config, batch: 1, height: 6, width: 10);
        var output = inputs.Run(model).ToCpu();
        Assert.Equal([1L, 8, 6, 10], output.shape);
        var values = output.data<float>().ToArray();
        for (int ch = 0; ch < 8; ch++)
        for (int y = 0; y < 6; y++)
        for (int x = 0; x < 10; x++)
        {
            int token = (y / 2) * 5 + x / 2, feature = ((y % 2) * 2 + x % 2) * 8 + ch;
            Assert.Equal(token * 1000 + feature, values[(ch * 6 + y) * 10 + x]);
        }
    }

    private sealed class PatternHead() : nn.Module<Tensor, Tensor>("PatternHead")
    {
        public override Tensor forward(Tensor x)
        {
            long b = x.shape[0], n = x.shape[1];
            var token = torch.arange(n, dtype: ScalarType.Float32, device: x.device).view(1, n, 1) * 1000;
            var feature = torch.arange(32, dtype: ScalarType.Float32, device: x.device).view(1, 1, 32);
            return (token + feature).expand(b, n, 32).contiguous();
        }
    }

    [Fact]
    public void Forward_WrongShapes_ThrowArgumentExceptionsNamingTheInput()
    {
        var config = SmallModels.Config();
        var model = SmallModels.Build(config);
        var i = SmallModels.RandomInputs(config, batch: 2);
        using var _ = torch.no_grad();
        var e = Assert.Throws<ArgumentException>(() => model.forward(i.X, i.Timestep, i.Bert[.., 0..3], i.BertMask, i.T5, i.T5Mask, i.Rope));
        Assert.Contains("bertStates must have shape [2, 5, 24], got [2, 3, 24]", e.Message);
        e = Assert.Throws<ArgumentException>(() => model.forward(i.X[.., 0..3], i.Timestep, i.Bert, i.BertMask, i.T5, i.T5Mask, i.Rope));
        Assert.Contains("channels", e.Message);
        e = Assert.Throws<ArgumentException>(() => model.forward(i.X, i.Timestep, i.Bert, i.BertMask, i.T5, i.T5Mask,
                                                                  model.RotaryTables(64, 64, device: D)));
        Assert.Contains("rope.cos", e.Message);
        e = Assert.Throws<ArgumentException>(() => model.forward(i.X[.., .., 0..7], i.Timestep, i.Bert, i.BertMask, i.T5, i.T5Mask, i.Rope));
        Assert.Contains("multiple of patch_size", e.Message);
        e = Assert.Throws<ArgumentException>(() => i.Run(model, framePhase: torch.zeros(2)));
        Assert.Contains("frame_phase_embedding", e.Message);

        var v11 = SmallModels.Build(SmallModels.Config(v12: false));
        e = Assert.Throws<ArgumentException>(() => v11.forward(i.X, i.Timestep, i.Bert, i.BertMask, i.T5, i.T5Mask, i.Rope));
        Assert.Contains("imageMetaSize", e.Message);
    }

    [Fact]
    public void FramePhase_StartsAsANoOp_AndConditionsOnceTrained()
    {
        var config = SmallModels.Config(framePhase: true);
        var model = SmallModels.Build(config);
        var inputs = SmallModels.RandomInputs(config, batch: 2);
        var phase = torch.tensor(new float[] { 0.25f, 0.75f }).to(D);
        var none = inputs.Run(model);
        Assert.True(none.eq(inputs.Run(model, phase)).all().item<bool>());   // zero-initialised output layer

        using (torch.no_grad())
        {
            var last = (Linear)model.time_extra_emb.frame_phase_embedder!.linear_2;
            torch.manual_seed(4);
            last.weight!.copy_(torch.randn(last.weight.shape) * 0.1);
        }
        var a = inputs.Run(model, phase);
        var b = inputs.Run(model, torch.tensor(new float[] { 0.5f, 0.75f }).to(D));
        Assert.False(a[0].allclose(b[0]));                            // phase changes sample 0 ...
        Assert.True((a[1] - b[1]).abs().max().item<float>() < 1e-5);  // ... and only sample 0
    }

    [Fact]
    public void FramePhaseToken_ConditionsEachSampleThroughTheContext()
    {
        // temb's phase embedder starts as a no-op (zero output layer); the context token does not, so the phase acts
        // from the first step, per sample, and through cross-attention (one more key and value per block).
        var config = SmallModels.Config(framePhase: true, framePhaseToken: true);
        var model = SmallModels.Build(config);
        var inputs = SmallModels.RandomInputs(config, batch: 2);
        var a = inputs.Run(model, torch.tensor(new float[] { 0.25f, 0.75f }).to(D));
        var b = inputs.Run(model, torch.tensor(new float[] { 0.5f, 0.75f }).to(D));
        Assert.False(a[0].allclose(b[0]));
        Assert.True((a[1] - b[1]).abs().max().item<float>() < 1e-5);
        using var _ = torch.no_grad();
        using var prepared = model.PrepareText(inputs.Bert, inputs.BertMask, inputs.T5, inputs.T5Mask, framePhase: torch.zeros(2).to(D));
        Assert.Equal(config.TextLen + config.TextLenT5 + 1, config.ContextLength);
        Assert.Equal(config.ContextLength, prepared.CrossAttention[0].Key.shape[2]);                 // [B, H, L + 1, hd]
        // The last context position is the embedder's token for the phase (keys and values are per position), and an
        // omitted phase is phase 0, as it is for temb.
        var phase = torch.tensor(new float[] { 0.3f, 0.9f }).to(D);
        using var phased = model.PrepareText(inputs.Bert, inputs.BertMask, inputs.T5, inputs.T5Mask, framePhase: phase);
        var token = model.frame_phase_token_embedder!.call(
            HunyuanCombinedTimestepTextSizeStyleEmbedding.PhaseSinusoid(phase, ScalarType.Float32)).unsqueeze(1);          // [B, 1, Dc]
        using var tokenOnly = model.blocks[0].attn2.ProjectText(token);
        Assert.True(phased.CrossAttention[0].Key[.., .., ^1..].allclose(tokenOnly.Key, rtol: 1e-5, atol: 1e-6));
        Assert.True(phased.CrossAttention[0].Value[.., .., ^1..].allclose(tokenOnly.Value, rtol: 1e-5, atol: 1e-6));
        using var omitted = model.PrepareText(inputs.Bert, inputs.BertMask, inputs.T5, inputs.T5Mask);
        Assert.True(omitted.CrossAttention[0].Key.allclose(prepared.CrossAttention[0].Key));
    }

    [Fact]
    public void FramePhaseTokenText_MakesTheTokenDependOnThePooledT5Text()
    {
        var config = SmallModels.Config(framePhase: true, framePhaseToken: true, framePhaseTokenText: true);
        var model = SmallModels.Build(config);
        var inputs = SmallModels.RandomInputs(config, batch: 2);
        using var _ = torch.no_grad();
        var phase = torch.tensor(new float[] { 0.3f, 0.9f }).to(D);
        using var prepared = model.PrepareText(inputs.Bert, inputs.BertMask, inputs.T5, inputs.T5Mask, framePhase: phase);
        // The last context position is the embedder's output for the phase sinusoid next to the pooled T5 states.
        var pooled = model.time_extra_emb.pooler.call(inputs.T5);                                                       // [B, P]
        var token = model.frame_phase_token_embedder!.call(torch.cat(
            [HunyuanCombinedTimestepTextSizeStyleEmbedding.PhaseSinusoid(phase, ScalarType.Float32), pooled], 1)).unsqueeze(1);
        using var tokenOnly = model.blocks[0].attn2.ProjectText(token);
        Assert.True(prepared.CrossAttention[0].Key[.., .., ^1..].allclose(tokenOnly.Key, rtol: 1e-5, atol: 1e-6));
        Assert.True(prepared.CrossAttention[0].Value[.., .., ^1..].allclose(tokenOnly.Value, rtol: 1e-5, atol: 1e-6));

        // Other T5 states change the token itself (not only the words' positions), so the phase's token differs per prompt.
        var otherT5 = torch.randn_like(inputs.T5);
        using var other = model.PrepareText(inputs.Bert, inputs.BertMask, otherT5, inputs.T5Mask, framePhase: phase);
        Assert.False(other.CrossAttention[0].Key[.., .., ^1..].allclose(prepared.CrossAttention[0].Key[.., .., ^1..], rtol: 1e-4, atol: 1e-5));

        // The full forward and the prepared one agree.
        var t = inputs.Timestep;
        var full = model.forward(inputs.X, t, inputs.Bert, inputs.BertMask, inputs.T5, inputs.T5Mask, inputs.Rope, framePhase: phase);
        Assert.True(full.allclose(model.forward(inputs.X, t, prepared, inputs.Rope), rtol: 1e-5, atol: 1e-6));
    }

    [Fact]
    public void ModuleSurgery_ReplacesALinearKeepingItsStateDictName()
    {
        var config = SmallModels.Config();
        var model = SmallModels.Build(config);
        var inputs = SmallModels.RandomInputs(config);
        var before = inputs.Run(model);

        var toQ = (Linear)model.blocks[0].attn1.to_q;
        var copy = nn.Linear(32, 32, device: D);
        using (torch.no_grad()) { copy.weight!.copy_(toQ.weight!); copy.bias!.copy_(toQ.bias!); }
        ModuleSurgery.Replace(model, "blocks.0.attn1.to_q", copy);
        Assert.Same(copy, model.blocks[0].attn1.to_q);
        Assert.Same(copy.weight, model.named_parameters().Single(p => p.name == "blocks.0.attn1.to_q.weight").parameter);
        Assert.True(before.eq(inputs.Run(model)).all().item<bool>());

        var zero = nn.Linear(80, 32, device: D);   // a ModuleList slot (ff.net.2): the FFN of block 1 now adds nothing
        using (torch.no_grad()) { zero.weight!.zero_(); zero.bias!.zero_(); }
        ModuleSurgery.Replace(model, "blocks.1.ff.net.2", zero);
        Assert.Same(zero, model.blocks[1].ff.ProjOut);
        Assert.Same(zero.weight, model.named_parameters().Single(p => p.name == "blocks.1.ff.net.2.weight").parameter);
        Assert.False(before.allclose(inputs.Run(model)));
        Assert.Throws<ArgumentException>(() => ModuleSurgery.Replace(model, "blocks.0.attn1.to_nothing", copy));
    }
}

public class QuantizationIntegrationTests
{
    [Fact]
    public void Int8Dynamic_SwapsEveryBlockLinear_FusesQkvAndKv_AndStaysCloseToFp32()
    {
        var config = SmallModels.Config(layers: 4);
        var model = SmallModels.Build(config);
        var inputs = SmallModels.RandomInputs(config, batch: 2);
        var reference = inputs.Run(model);

        var report = BatchRender.Model.Quantization.ModelQuantizer.Apply(model, BatchRender.Model.Pipelines.QuantizationMode.Int8Dynamic);
        Assert.Equal(4 * 2, report.FusedGroups.Count);
        Assert.Contains("blocks.0.attn1.to_q+blocks.0.attn1.to_k+blocks.0.attn1.to_v", report.FusedGroups);
        Assert.Contains("blocks.3.attn2.to_k+blocks.3.attn2.to_v", report.FusedGroups);
        // per block: attn1 q,k,v,out + attn2 q,k,v,out + ff 2 + norm1.linear (block 3's skip_linear stays fp32)
        Assert.Equal(4 * 11, report.ReplacedLinears.Count);

        var quantized = inputs.Run(model);
        double noise = (quantized - reference).pow(2).mean().item<float>();
        double signal = reference.pow(2).mean().item<float>();
        double snrDb = 10 * Math.Log10(signal / noise);
        Assert.True(snrDb > 25, $"int8 vs fp32 SNR {snrDb:F1} dB");
    }
}
