using System.Text.Json;
using System.Text.Json.Nodes;
using BatchRender.Model.Autoencoders;
using BatchRender.Model.Schedulers;
using BatchRender.Model.TextEncoders;
using BatchRender.Model.Transformers;
using TorchSharp;
using static TorchSharp.torch;

namespace BatchRender.Model.Pipelines;

/// <summary>
/// Writes a whole Hunyuan-DiT model directory in diffusers layout (the layout <see cref="ModelComponents.Load"/> reads):
/// model_index.json, the four weight components with their config.json, the scheduler config, and the two tokenizer
/// folders copied from where they were built.
/// </summary>
public static class ModelDirectoryWriter
{
    private static readonly JsonSerializerOptions Indented = new() { WriteIndented = true, DefaultIgnoreCondition = System.Text.Json.Serialization.JsonIgnoreCondition.WhenWritingNull };

    public static void Save(string modelDirectory, HunyuanDiT2DModel transformer, AutoencoderKL vae, BertModel textEncoder,
                            T5EncoderModel textEncoder2, SchedulerConfig scheduler, string tokenizerDirectory, string tokenizer2Directory,
                            ScalarType? dtype = null)
    {
        Directory.CreateDirectory(modelDirectory);
        string Part(string name) => Path.Combine(modelDirectory, name);
        transformer.SavePretrained(Part("transformer"), dtype);
        vae.SavePretrained(Part("vae"), dtype);
        textEncoder.SavePretrained(Part("text_encoder"), dtype);
        textEncoder2.SavePretrained(Part("text_encoder_2"), dtype);
        Directory.CreateDirectory(Part("scheduler"));
        File.WriteAllText(Path.Combine(Part("scheduler"), "scheduler_config.json"),
                          WithClass(scheduler.ClassName ?? "DDPMScheduler", scheduler).ToJsonString(Indented));
        CopyFolder(tokenizerDirectory, Part("tokenizer"));
        CopyFolder(tokenizer2Directory, Part("tokenizer_2"));
        WriteModelIndex(modelDirectory);
    }

    /// <summary>model_index.json as diffusers writes it for HunyuanDiTPipeline.</summary>
    public static void WriteModelIndex(string modelDirectory)
    {
        var index = new JsonObject
        {
            ["_class_name"] = "HunyuanDiTPipeline",
            ["_diffusers_version"] = "0.30.0",
            ["feature_extractor"] = new JsonArray(null, null),
            ["safety_checker"] = new JsonArray(null, null),
            ["scheduler"] = new JsonArray("diffusers", "DDPMScheduler"),
            ["text_encoder"] = new JsonArray("transformers", "BertModel"),
            ["text_encoder_2"] = new JsonArray("transformers", "T5EncoderModel"),
            ["tokenizer"] = new JsonArray("transformers", "BertTokenizer"),
            ["tokenizer_2"] = new JsonArray("transformers", "T5Tokenizer"),
            ["transformer"] = new JsonArray("diffusers", "HunyuanDiT2DModel"),
            ["vae"] = new JsonArray("diffusers", "AutoencoderKL"),
        };
        File.WriteAllText(Path.Combine(modelDirectory, ModelComponents.ModelIndexFile), index.ToJsonString(Indented));
    }

    private static JsonObject WithClass<T>(string className, T config)
    {
        var body = JsonSerializer.SerializeToNode(config, Indented)!.AsObject();
        var result = new JsonObject { ["_class_name"] = className };
        foreach (var (key, value) in body)
            if (key != "_class_name") result[key] = value?.DeepClone();
        return result;
    }

    private static void CopyFolder(string from, string to)
    {
        if (!Directory.Exists(from)) throw new DirectoryNotFoundException($"tokenizer folder not found: {from}");
        if (Path.GetFullPath(from) == Path.GetFullPath(to)) return;
        Directory.CreateDirectory(to);
        foreach (var file in Directory.GetFiles(from))
            File.Copy(file, Path.Combine(to, Path.GetFileName(file)), overwrite: true);
    }
}
