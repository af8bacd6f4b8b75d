using System.Text.Json.Nodes;
using BatchRender.Model.Autoencoders;
using BatchRender.Model.Loading;
using BatchRender.Model.Schedulers;
using BatchRender.Model.TextEncoders;
using BatchRender.Model.Tokenizers;
using BatchRender.Model.Transformers;
using TorchSharp;
using static TorchSharp.torch;

namespace BatchRender.Model.Pipelines;

/// <summary>
/// The parts of a Hunyuan-DiT model directory in diffusers layout (model_index.json, transformer/, vae/, text_encoder/,
/// text_encoder_2/, tokenizer/, tokenizer_2/, scheduler/), loaded strictly onto one device. The official v1.2
/// checkpoint and the shipped demo model load through this same code.
/// </summary>
public sealed class ModelComponents : IDisposable
{
    public const string ModelIndexFile = "model_index.json";
    public static readonly string[] RequiredComponents =
        ["transformer", "vae", "text_encoder", "text_encoder_2", "tokenizer", "tokenizer_2", "scheduler"];

    public required HunyuanDiT2DModel Transformer { get; init; }
    public required AutoencoderKL Vae { get; init; }
    public required BertModel TextEncoder { get; init; }
    public required T5EncoderModel TextEncoder2 { get; init; }
    public required ITextTokenizer Tokenizer { get; init; }
    public required ITextTokenizer Tokenizer2 { get; init; }
    public required SchedulerConfig SchedulerConfig { get; init; }
    public required Device Device { get; init; }
    /// <summary>SHA-256 over every component's weight files (stable across machines), for sidecars.</summary>
    public required string ModelHash { get; init; }

    public int LatentChannels => Transformer.Config.InChannels;
    public int VaeScaleFactor => Vae.ScaleFactor;

    public static ModelComponents Load(string modelDirectory, Device device)
    {
        CheckLayout(modelDirectory);
        string Part(string name) => Path.Combine(modelDirectory, name);

        var transformer = HunyuanDiT2DModel.FromPretrained(Part("transformer"), device);
        var vae = AutoencoderKL.FromPretrained(Part("vae"), device);
        var textEncoder = BertModel.FromPretrained(Part("text_encoder"), device);
        var textEncoder2 = T5EncoderModel.FromPretrained(Part("text_encoder_2"), device);
        var components = new ModelComponents
        {
            Transformer = transformer,
            Vae = vae,
            TextEncoder = textEncoder,
            TextEncoder2 = textEncoder2,
            Tokenizer = BertTextTokenizer.FromDirectory(Part("tokenizer"), transformer.Config.TextLen),
            Tokenizer2 = MT5TextTokenizer.FromDirectory(Part("tokenizer_2"), transformer.Config.TextLenT5),
            SchedulerConfig = SchedulerConfig.Load(Path.Combine(Part("scheduler"), "scheduler_config.json")),
            Device = device,
            ModelHash = DiffusersComponent.ComputePipelineHash(modelDirectory),
        };
        components.CheckCompatible(modelDirectory);
        return components;
    }

    /// <summary>model_index.json must exist and name every component; each component folder must exist.</summary>
    public static void CheckLayout(string modelDirectory)
    {
        if (!Directory.Exists(modelDirectory))
            throw new DirectoryNotFoundException($"{modelDirectory}: model directory not found");
        var indexPath = Path.Combine(modelDirectory, ModelIndexFile);
        if (!File.Exists(indexPath))
            throw new InvalidDataException($"{indexPath}: not found (a model directory is in diffusers layout, with model_index.json)");
        JsonObject index;
        try { index = JsonNode.Parse(File.ReadAllText(indexPath))?.AsObject() ?? throw new InvalidDataException("empty"); }
        catch (Exception e) when (e is System.Text.Json.JsonException or InvalidOperationException or InvalidDataException)
        {
            throw new InvalidDataException($"{indexPath}: not a JSON object ({e.Message})", e);
        }
        var problems = new List<string>();
        foreach (var name in RequiredComponents)
        {
            if (!index.ContainsKey(name)) problems.Add($"{ModelIndexFile} does not name component '{name}'");
            if (!Directory.Exists(Path.Combine(modelDirectory, name))) problems.Add($"folder {name}/ is missing");
        }
        if (problems.Count > 0)
            throw new InvalidDataException($"{modelDirectory}: not a Hunyuan-DiT model directory: {string.Join("; ", problems)}");
    }

    /// <summary>The components must agree on the widths they exchange.</summary>
    private void CheckCompatible(string modelDirectory)
    {
        var c = Transformer.Config;
        var problems = new List<string>();
        if (TextEncoder.Config.HiddenSize != c.CrossAttentionDim)
            problems.Add($"text_encoder hidden_size {TextEncoder.Config.HiddenSize} != transformer cross_attention_dim {c.CrossAttentionDim}");
        if (TextEncoder2.Config.DModel != c.CrossAttentionDimT5)
            problems.Add($"text_encoder_2 d_model {TextEncoder2.Config.DModel} != transformer cross_attention_dim_t5 {c.CrossAttentionDimT5}");
        if (Vae.Config.LatentChannels != c.InChannels)
            problems.Add($"vae latent_channels {Vae.Config.LatentChannels} != transformer in_channels {c.InChannels}");
        if (problems.Count > 0)
            throw new InvalidDataException($"{modelDirectory}: components do not fit together: {string.Join("; ", problems)}");
    }

    public void Dispose()
    {
        Transformer.Dispose();
        Vae.Dispose();
        TextEncoder.Dispose();
        TextEncoder2.Dispose();
    }
}
