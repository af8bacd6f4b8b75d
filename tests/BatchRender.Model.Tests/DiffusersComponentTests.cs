using System.Security.Cryptography;
using System.Text.Json.Nodes;
using BatchRender.Model.Loading;
using BatchRender.Model.Transformers;
using TorchSharp;
using static TorchSharp.torch;

namespace BatchRender.Model.Tests;

public class DiffusersComponentTests
{
    private const string WeightsName = "diffusion_pytorch_model.safetensors";

    [Fact]
    public void SaveThenLoad_SmallModel_IsExact_AndGivesTheSameOutput()
    {
        using var dir = TestDevice.TempDir();
        var config = SmallModels.Config(layers: 4, v12: false);
        var original = SmallModels.Build(config, seed: 3);
        original.SavePretrained(dir.Path);
        Assert.True(File.Exists(Path.Combine(dir.Path, "config.json")));
        Assert.True(File.Exists(Path.Combine(dir.Path, WeightsName)));

        var loaded = HunyuanDiT2DModel.FromPretrained(dir.Path, TestDevice.Current);
        Assert.Equal(config, loaded.Config);
        var a = original.state_dict();
        var b = loaded.state_dict();
        Assert.Equal(a.Keys.Order(), b.Keys.Order());
        foreach (var key in a.Keys) Assert.True(a[key].eq(b[key]).all().item<bool>(), key);

        var inputs = SmallModels.RandomInputs(config);
        Assert.True(inputs.Run(original).eq(inputs.Run(loaded)).all().item<bool>());
    }

    [Fact]
    public void Load_RenamedKeyAndWrongShape_FailsNamingEveryKeyAndBothShapes()
    {
        using var dir = TestDevice.TempDir();
        var model = SmallModels.Build(SmallModels.Config());
        model.SavePretrained(dir.Path);
        var file = Path.Combine(dir.Path, WeightsName);
        var tensors = SafetensorsFile.ReadHeader(file).ReadAll();
        tensors["blocks.0.attn1.to_qq.weight"] = tensors["blocks.0.attn1.to_q.weight"];
        tensors.Remove("blocks.0.attn1.to_q.weight");
        tensors["proj_out.bias"] = torch.zeros(5);
        SafetensorsFile.Write(file, tensors.OrderBy(kv => kv.Key, StringComparer.Ordinal));

        var fresh = SmallModels.Build(SmallModels.Config(), seed: 9);
        var before = fresh.proj_out.parameters().First().clone();
        var e = Assert.Throws<WeightLoadException>(() => DiffusersComponent.LoadStateDict(fresh, dir.Path));
        Assert.Equal(3, e.Problems.Count);
        Assert.Contains(e.Problems, p => p.Contains("missing tensor 'blocks.0.attn1.to_q.weight' [32, 32]"));
        Assert.Contains(e.Problems, p => p.Contains("unexpected tensor 'blocks.0.attn1.to_qq.weight' [32, 32]"));
        Assert.Contains(e.Problems, p => p.Contains("shape mismatch for 'proj_out.bias': file [5], model [32]"));
        Assert.Contains(dir.Path, e.Message);
        // Validation happens before any data is copied: the module is untouched.
        Assert.True(before.eq(fresh.proj_out.parameters().First()).all().item<bool>());
    }

    [Theory]
    [InlineData(ScalarType.Float16)]
    [InlineData(ScalarType.BFloat16)]
    public void Load_HalfPrecisionFile_IsConvertedToTheRequestedDtype(ScalarType stored)
    {
        using var dir = TestDevice.TempDir();
        var model = SmallModels.Build(SmallModels.Config());
        DiffusersComponent.Save(model, dir.Path, model.Config.ToJsonObject(), dtype: stored);
        Assert.All(SafetensorsFile.ReadHeader(Path.Combine(dir.Path, WeightsName)).Entries,
                   e => Assert.Equal(SafetensorsFile.ToSafetensorsDType(stored), e.DType));

        var loaded = new HunyuanDiT2DModel(model.Config, torch.CPU);
        DiffusersComponent.LoadStateDict(loaded, dir.Path, ScalarType.Float32, TestDevice.Current);
        var expected = model.state_dict();
        foreach (var (key, t) in loaded.state_dict())
        {
            Assert.Equal(ScalarType.Float32, t.dtype);
            Assert.Equal(TestDevice.Current.type, t.device_type);
            Assert.True(expected[key].to(stored).to(ScalarType.Float32).eq(t).all().item<bool>(), key);
        }
    }

    [Fact]
    public void Load_ShardedWithIndex_ReadsAllShards_AndHashCoversThem()
    {
        using var dir = TestDevice.TempDir();
        var model = SmallModels.Build(SmallModels.Config());
        var state = model.state_dict().OrderBy(kv => kv.Key, StringComparer.Ordinal).ToList();
        var first = state.Take(state.Count / 2).ToList();
        var second = state.Skip(state.Count / 2).ToList();
        SafetensorsFile.Write(Path.Combine(dir.Path, "model-00001-of-00002.safetensors"), first);
        SafetensorsFile.Write(Path.Combine(dir.Path, "model-00002-of-00002.safetensors"), second);
        var map = new JsonObject();
        foreach (var (k, _) in first) map[k] = "model-00001-of-00002.safetensors";
        foreach (var (k, _) in second) map[k] = "model-00002-of-00002.safetensors";
        File.WriteAllText(Path.Combine(dir.Path, "model.safetensors.index.json"),
                          new JsonObject { ["metadata"] = new JsonObject(), ["weight_map"] = map }.ToJsonString());

        Assert.Equal(2, DiffusersComponent.FindWeightFiles(dir.Path).Count);
        var loaded = SmallModels.Build(SmallModels.Config(), seed: 5);
        DiffusersComponent.LoadStateDict(loaded, dir.Path);
        foreach (var (key, t) in loaded.state_dict()) Assert.True(model.state_dict()[key].eq(t).all().item<bool>(), key);

        var concatenated = File.ReadAllBytes(Path.Combine(dir.Path, "model-00001-of-00002.safetensors"))
            .Concat(File.ReadAllBytes(Path.Combine(dir.Path, "model-00002-of-00002.safetensors"))).ToArray();
        Assert.Equal(Convert.ToHexStringLower(SHA256.HashData(concatenated)), DiffusersComponent.ComputeModelHash(dir.Path));
    }

    [Fact]
    public void Save_WithMaxShardBytes_WritesShardsAndIndex_ThatLoadBack()
    {
        using var dir = TestDevice.TempDir();
        var model = SmallModels.Build(SmallModels.Config());
        model.SavePretrained(dir.Path);                                  // a single file first: replaced by the shards
        DiffusersComponent.Save(model, dir.Path, model.Config.ToJsonObject(), maxShardBytes: 64 * 1024);
        var files = DiffusersComponent.FindWeightFiles(dir.Path);
        Assert.True(files.Count > 2, $"{files.Count} shards");
        Assert.Equal($"diffusion_pytorch_model-00001-of-{files.Count:D5}.safetensors", Path.GetFileName(files[0]));
        Assert.False(File.Exists(Path.Combine(dir.Path, WeightsName)));
        var loaded = HunyuanDiT2DModel.FromPretrained(dir.Path, TestDevice.Current);
        foreach (var (key, t) in loaded.state_dict()) Assert.True(model.state_dict()[key].eq(t).all().item<bool>(), key);
    }

    [Fact]
    public void ModelHash_IsTheFileSha256_StableAndChangesWithTheWeights()
    {
        using var dir = TestDevice.TempDir();
        var model = SmallModels.Build(SmallModels.Config());
        model.SavePretrained(dir.Path);
        var hash = DiffusersComponent.ComputeModelHash(dir.Path);
        Assert.Matches("^[0-9a-f]{64}$", hash);
        Assert.Equal(Convert.ToHexStringLower(SHA256.HashData(File.ReadAllBytes(Path.Combine(dir.Path, WeightsName)))), hash);
        model.SavePretrained(dir.Path);
        Assert.Equal(hash, DiffusersComponent.ComputeModelHash(dir.Path));   // saving is deterministic
        using (torch.no_grad()) model.proj_out.parameters().First().add_(1e-3);
        model.SavePretrained(dir.Path);
        Assert.NotEqual(hash, DiffusersComponent.ComputeModelHash(dir.Path));
    }

    [Fact]
    public void CheckStateDict_ValidatesAMetaDeviceModelAgainstTheHeaders_WithoutLoading()
    {
        var v12Folder = Path.Combine(AppContext.BaseDirectory, "Golden", "hunyuan-dit-v12-small");
        var v12 = new HunyuanDiT2DModel(HunyuanDiTConfigLoad(v12Folder), torch.device("meta"));
        Assert.Empty(DiffusersComponent.CheckStateDict(v12, v12Folder));

        // A v1.1 checkpoint against a v1.2 model: the classic "style_embedder missing / extra_embedder shape" failure.
        var v11Folder = Path.Combine(AppContext.BaseDirectory, "Golden", "hunyuan-dit-v11-small");
        var problems = DiffusersComponent.CheckStateDict(v12, v11Folder);
        Assert.Equal(2, problems.Count);
        Assert.Contains(problems, p => p.StartsWith("unexpected tensor 'time_extra_emb.style_embedder.weight' [1, 64]"));
        Assert.Contains(problems, p => p == "shape mismatch for 'time_extra_emb.extra_embedder.linear_1.weight': file [256, 1640], model [256, 40]");
        Assert.Throws<InvalidOperationException>(() => DiffusersComponent.LoadStateDict(v12, v12Folder));   // meta: nothing to copy into
    }

    [Fact]
    public void FromPretrained_ConfigThatDisagreesWithTheWeights_FailsBeforeBuildingTheModel()
    {
        using var dir = TestDevice.TempDir();
        var golden = Path.Combine(AppContext.BaseDirectory, "Golden", "hunyuan-dit-v11-small");
        File.Copy(Path.Combine(golden, WeightsName), Path.Combine(dir.Path, WeightsName));
        var config = HunyuanDiTConfigLoad(golden) with { UseStyleCondAndImageMetaSize = false };   // v1.1 weights, v1.2 config
        File.WriteAllText(Path.Combine(dir.Path, "config.json"), config.ToJsonObject().ToJsonString());
        var e = Assert.Throws<WeightLoadException>(() => HunyuanDiT2DModel.FromPretrained(dir.Path, TestDevice.Current));
        Assert.Contains("time_extra_emb.style_embedder.weight", e.Message);
        Assert.Contains("time_extra_emb.extra_embedder.linear_1.weight", e.Message);
    }

    private static BatchRender.Model.Configuration.HunyuanDiTConfig HunyuanDiTConfigLoad(string folder)
        => BatchRender.Model.Configuration.HunyuanDiTConfig.Load(folder);

    [Fact]
    public void PipelineHash_CoversEveryComponentsWeights_AndNothingElse()
    {
        using var dir = TestDevice.TempDir();
        var model = SmallModels.Build(SmallModels.Config());
        model.SavePretrained(Path.Combine(dir.Path, "transformer"));
        var other = SmallModels.Build(SmallModels.Config(), seed: 7);
        DiffusersComponent.Save(other, Path.Combine(dir.Path, "text_encoder"), new JsonObject(), "model.safetensors");
        Directory.CreateDirectory(Path.Combine(dir.Path, "tokenizer"));
        File.WriteAllText(Path.Combine(dir.Path, "tokenizer", "vocab.txt"), "a");
        var hash = DiffusersComponent.ComputePipelineHash(dir.Path);
        Assert.Matches("^[0-9a-f]{64}$", hash);

        File.WriteAllText(Path.Combine(dir.Path, "tokenizer", "vocab.txt"), "b");        // not weights: same hash
        File.WriteAllText(Path.Combine(dir.Path, "transformer", "config.json"), "{}");
        Assert.Equal(hash, DiffusersComponent.ComputePipelineHash(dir.Path));
        using (torch.no_grad()) other.proj_out.parameters().First().add_(1e-3);             // a component's weights: new hash
        DiffusersComponent.Save(other, Path.Combine(dir.Path, "text_encoder"), new JsonObject(), "model.safetensors");
        Assert.NotEqual(hash, DiffusersComponent.ComputePipelineHash(dir.Path));
    }

    [Fact]
    public void MissingDirectoryOrWeights_FailWithAClearMessage()
    {
        using var dir = TestDevice.TempDir();
        Assert.Throws<DirectoryNotFoundException>(() => DiffusersComponent.FindWeightFiles(Path.Combine(dir.Path, "nope")));
        var e = Assert.Throws<FileNotFoundException>(() => DiffusersComponent.FindWeightFiles(dir.Path));
        Assert.Contains("diffusion_pytorch_model.safetensors or model.safetensors", e.Message);
    }
}
