using System.Text.Json;
using BatchRender.Model.Tests.Golden;
using BatchRender.Model.TextEncoders;
using static TorchSharp.torch;

namespace BatchRender.Model.Tests.TextEncoders;

/// <summary>TorchSharp encoders against PyTorch references (bench/golden/make_golden.py) at small random configs, fp32.</summary>
public class TextEncoderGoldenTests
{
    internal static string ConfigSection(string name)
    {
        using var doc = JsonDocument.Parse(File.ReadAllText(Path.Combine(AppContext.BaseDirectory, "Golden", "configs.json")));
        return doc.RootElement.GetProperty(name).GetRawText();
    }

    [Fact]
    public void Bert_last_hidden_state_and_pooler_match_the_reference()
    {
        using var golden = new GoldenFile("bert.safetensors");
        using var model = golden.LoadInto(new BertModel(BertConfig.Parse(ConfigSection("bert"), "Golden/configs.json")));
        using var _ = no_grad();
        var hidden = model.forward(golden["input_ids"], golden["attention_mask"]);
        // Padded positions included: the reference computes them with the same additive mask.
        GoldenFile.AssertClose(golden["last_hidden_state"], hidden);
        GoldenFile.AssertClose(golden["pooler_output"], model.Pool(hidden));
    }

    [Fact]
    public void T5_last_hidden_state_matches_the_reference()
    {
        using var golden = new GoldenFile("t5.safetensors");
        using var model = golden.LoadInto(new T5EncoderModel(T5Config.Parse(ConfigSection("t5"), "Golden/configs.json")));
        using var _ = no_grad();
        GoldenFile.AssertClose(golden["last_hidden_state"], model.forward(golden["input_ids"], golden["attention_mask"]));
    }
}
