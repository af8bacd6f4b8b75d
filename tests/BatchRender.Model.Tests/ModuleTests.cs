using BatchRender.Model.Attention;
using BatchRender.Model.Embeddings;
using BatchRender.Model.Normalization;
using BatchRender.Model.Transformers;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace BatchRender.Model.Tests;

/// <summary>Each module's shapes, and its values against the reference formulas written out with plain tensor ops.</summary>
public class ModuleTests
{
    private static readonly Device D = TestDevice.Current;

    private static void AssertClose(Tensor expected, Tensor actual, double tol = 1e-5)
    {
        Assert.Equal(expected.shape, actual.shape);
        double err = (expected.ToCpu() - actual.ToCpu()).abs().max().item<float>();
        double scale = Math.Max(1.0, expected.abs().max().item<float>());
        Assert.True(err <= tol * scale, $"max abs error {err} (scale {scale})");
    }

    [Fact]
    public void TimestepSinusoid_IsCosineFirst()
    {
        var t = torch.tensor(new float[] { 0, 3, 999 }).to(D);
        var emb = Timesteps.Embed(t, 256).ToCpu().data<float>().ToArray();
        float[] ts = [0, 3, 999];
        for (int n = 0; n < 3; n++)
        for (int i = 0; i < 128; i++)
        {
            double arg = ts[n] * Math.Exp(-Math.Log(10000) * i / 128);
            Assert.Equal(Math.Cos(arg), emb[n * 256 + i], 3);
            Assert.Equal(Math.Sin(arg), emb[n * 256 + 128 + i], 3);
        }
    }

    [Fact]
    public void PatchEmbed_TokensAreRowMajorPatches()
    {
        torch.manual_seed(0);
        var embed = new PatchEmbed(2, 4, 32, D);
        var x = torch.randn([2, 4, 6, 10]).to(D);
        using var _ = torch.no_grad();
        var tokens = embed.call(x);
        Assert.Equal([2L, 15, 32], tokens.shape);
        var conv = embed.proj.call(x);   // [2, 32, 3, 5]
        AssertClose(conv[.., .., 1, 3], tokens[.., 1 * 5 + 3, ..]);
    }

    [Fact]
    public void AttentionPool_IsOneQueryAttentionOverMeanAndAllTokens_IgnoringNoMask()
    {
        torch.manual_seed(0);
        var pool = new HunyuanDiTAttentionPool(7, 16, numHeads: 8, outputDim: 12, D);
        var x = torch.randn([3, 7, 16]).to(D);
        using var _ = torch.no_grad();
        var pooled = pool.call(x);
        Assert.Equal([3L, 12], pooled.shape);

        // Reference: torch multi_head_attention_forward semantics, written out.
        var seq = torch.cat([x.mean([1], keepdim: true), x], 1) + pool.positional_embedding;   // [3, 8, 16]
        var q = pool.q_proj.call(seq[.., 0..1, ..]).view(3, 1, 8, 2).transpose(1, 2);
        var k = pool.k_proj.call(seq).view(3, 8, 8, 2).transpose(1, 2);
        var v = pool.v_proj.call(seq).view(3, 8, 8, 2).transpose(1, 2);
        var weights = torch.softmax(q.matmul(k.transpose(-1, -2)) / Math.Sqrt(2), -1);
        var expected = pool.c_proj.call(weights.matmul(v).transpose(1, 2).reshape(3, 16));
        AssertClose(expected, pooled);
    }

    [Fact]
    public void CombinedEmbedding_V12AndV11_ShapesAndV11UsesSizeAndStyle()
    {
        torch.manual_seed(0);
        var t = torch.tensor(new float[] { 10, 500 }).to(D);
        var t5 = torch.randn([2, 7, 40]).to(D);
        using var _ = torch.no_grad();
        var v12 = new HunyuanCombinedTimestepTextSizeStyleEmbedding(32, 20, 7, 40, useStyleCondAndImageMetaSize: false, device: D);
        Assert.Equal([2L, 32], v12.forward(t, t5, null, null, ScalarType.Float32).shape);
        Assert.Null(v12.style_embedder);

        var v11 = new HunyuanCombinedTimestepTextSizeStyleEmbedding(32, 20, 7, 40, useStyleCondAndImageMetaSize: true, device: D);
        Assert.Equal([128L, 20 + 256 * 6 + 32], ((Linear)v11.extra_embedder.linear_1).weight!.shape);
        var style = torch.zeros(2, dtype: ScalarType.Int64, device: D);
        var sizeA = torch.tensor(new float[] { 1024, 1024, 1024, 1024, 0, 0 }).repeat(2, 1).to(D);
        var sizeB = torch.tensor(new float[] { 1024, 1024, 768, 1024, 0, 0 }).repeat(2, 1).to(D);
        var a = v11.forward(t, t5, sizeA, style, ScalarType.Float32);
        Assert.Equal([2L, 32], a.shape);
        Assert.False(a.allclose(v11.forward(t, t5, sizeB, style, ScalarType.Float32)));

        // Reference composition: timestep MLP + extra MLP(cat(pooled, size sinusoid, style row)).
        var extra = torch.cat([v11.pooler.call(t5), Timesteps.Embed(sizeA.reshape(-1)).view(2, -1), v11.style_embedder!.call(style)], 1);
        AssertClose(v11.timestep_embedder.call(Timesteps.Embed(t)) + v11.extra_embedder.call(extra), a);
    }

    /// <summary>Reference attention: per-head LayerNorm on q and k, RoPE, softmax(q k^T / sqrt(d)) v, to_out.0.</summary>
    private static Tensor ReferenceAttention(HunyuanAttention attn, Tensor h, Tensor ctx, Tensor cos, Tensor sin, bool ropeOnKey)
    {
        long b = h.shape[0];
        int heads = attn.Heads, hd = attn.HeadDim;
        Tensor Split(Tensor t) => t.view(b, -1, heads, hd).transpose(1, 2);
        var q = nn.functional.layer_norm(Split(attn.to_q.call(h)), [hd], attn.norm_q.weight, attn.norm_q.bias, 1e-6);
        var k = nn.functional.layer_norm(Split(attn.to_k.call(ctx)), [hd], attn.norm_k.weight, attn.norm_k.bias, 1e-6);
        var v = Split(attn.to_v.call(ctx));
        q = HunyuanRotaryEmbedding.Apply(q, cos, sin);
        if (ropeOnKey) k = HunyuanRotaryEmbedding.Apply(k, cos, sin);
        var w = torch.softmax(q.matmul(k.transpose(-1, -2)) / Math.Sqrt(hd), -1);
        return attn.OutProjection.call(w.matmul(v).transpose(1, 2).reshape(b, -1, heads * hd));
    }

    [Fact]
    public void SelfAttention_RopeOnQueryAndKey_CrossAttention_RopeOnQueryOnly()
    {
        torch.manual_seed(0);
        var (cos, sin) = HunyuanRotaryEmbedding.RotaryTables(64, 96, 16, device: D);   // 4 x 6 tokens
        var h = torch.randn([2, 24, 32]).to(D);
        var ctx = torch.randn([2, 12, 24]).to(D);
        using var _ = torch.no_grad();
        var self = new HunyuanAttention(32, null, 2, 16, device: D);
        AssertClose(ReferenceAttention(self, h, h, cos, sin, ropeOnKey: true), self.forward(h, rope: (cos, sin)));
        var cross = new HunyuanAttention(32, 24, 2, 16, device: D);
        var output = cross.forward(h, ctx, (cos, sin));
        Assert.Equal([2L, 24, 32], output.shape);
        AssertClose(ReferenceAttention(cross, h, ctx, cos, sin, ropeOnKey: false), output);
        Assert.Throws<ArgumentException>(() => cross.forward(h));
        Assert.Throws<ArgumentException>(() => cross.forward(h, ctx[.., .., 0..20], (cos, sin)));      // context width
        Assert.Throws<ArgumentException>(() => self.forward(h[.., 0..10], rope: (cos, sin)));           // rope rows != tokens
        Assert.Throws<ArgumentException>(() => self.forward(torch.randn([2, 24, 30]).to(D)));           // query width
    }

    [Fact]
    public void QkvProjectionOverride_IsUsedForTheProjections()
    {
        torch.manual_seed(0);
        var attn = new HunyuanAttention(32, null, 2, 16, device: D);
        var h = torch.randn([1, 4, 32]).to(D);
        using var _ = torch.no_grad();
        var expected = attn.forward(h);
        int calls = 0;
        attn.QkvProjection = (hidden, context) =>
        {
            calls++;
            // One fused GEMM over concatenated weights, as a quantized projection would do.
            var w = torch.cat([((Linear)attn.to_q).weight!, ((Linear)attn.to_k).weight!, ((Linear)attn.to_v).weight!], 0);
            var bias = torch.cat([((Linear)attn.to_q).bias!, ((Linear)attn.to_k).bias!, ((Linear)attn.to_v).bias!], 0);
            var qkv = nn.functional.linear(hidden, w, bias).chunk(3, -1);
            return (qkv[0], qkv[1], qkv[2]);
        };
        AssertClose(expected, attn.forward(h));
        Assert.Equal(1, calls);
    }

    [Fact]
    public void FeedForward_IsGeluTanhBetweenTwoLinears_WithDiffusersNames()
    {
        torch.manual_seed(0);
        var ff = new FeedForward(32, 80, device: D);
        Assert.Equal(["net.0.proj.bias", "net.0.proj.weight", "net.2.bias", "net.2.weight"],
                     ff.state_dict().Keys.Order(StringComparer.Ordinal));
        var x = torch.randn([2, 5, 32]).to(D);
        using var _ = torch.no_grad();
        var expected = ff.ProjOut.call(nn.functional.gelu(ff.ProjIn.call(x), GELU.Approximate.tanh));
        AssertClose(expected, ff.call(x));
    }

    [Fact]
    public void AdaNorms_ShiftOnly_AndScaleFirstThenShift()
    {
        torch.manual_seed(0);
        var x = torch.randn([2, 5, 32]).to(D);
        var emb = torch.randn([2, 32]).to(D);
        using var _ = torch.no_grad();
        var shiftNorm = new AdaLayerNormShift(32, device: D);
        var shift = shiftNorm.linear.call(nn.functional.silu(emb));
        AssertClose(nn.functional.layer_norm(x, [32], shiftNorm.norm.weight, shiftNorm.norm.bias, 1e-6) + shift.unsqueeze(1),
                    shiftNorm.forward(x, emb));

        var outNorm = new AdaLayerNormContinuous(32, 32, device: D);
        var e = outNorm.linear.call(nn.functional.silu(emb));
        var (scale, shiftOut) = (e[.., ..32], e[.., 32..]);
        AssertClose(nn.functional.layer_norm(x, [32], null, null, 1e-6) * (1 + scale.unsqueeze(1)) + shiftOut.unsqueeze(1),
                    outNorm.forward(x, emb));
    }

    [Fact]
    public void Block_WithSkip_ConcatenatesCurrentThenSkip_AndDemandsTheSkip()
    {
        torch.manual_seed(0);
        var block = new HunyuanDiTBlock(32, 2, 24, 80, skip: true, device: D);
        var plain = new HunyuanDiTBlock(32, 2, 24, 80, skip: false, device: D);
        Assert.Null(plain.skip_linear);
        Assert.DoesNotContain(plain.state_dict().Keys, k => k.StartsWith("skip_"));
        Assert.Equal([32L, 64], ((Linear)block.skip_linear!).weight!.shape);
        var (cos, sin) = HunyuanRotaryEmbedding.RotaryTables(64, 64, 16, device: D);
        var h = torch.randn([2, 16, 32]).to(D);
        var skip = torch.randn([2, 16, 32]).to(D);
        var ctx = torch.randn([2, 12, 24]).to(D);
        var temb = torch.randn([2, 32]).to(D);
        using var _ = torch.no_grad();
        Assert.Throws<ArgumentException>(() => block.forward(h, ctx, temb, (cos, sin)));
        Assert.Throws<ArgumentException>(() => plain.forward(h, ctx, temb, (cos, sin), skip));
        var output = block.forward(h, ctx, temb, (cos, sin), skip);
        Assert.Equal(h.shape, output.shape);

        // Reference order of operations.
        var r = block.skip_linear!.call(block.skip_norm!.call(torch.cat([h, skip], -1)));
        r = r + block.attn1.forward(block.norm1.forward(r, temb), rope: (cos, sin));
        r = r + block.attn2.forward(block.norm2.call(r), ctx, (cos, sin));
        r = r + block.ff.call(block.norm3.call(r));
        AssertClose(r, output);
    }
}
