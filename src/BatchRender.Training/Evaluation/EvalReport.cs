using System.Text.Json;
using System.Text.Json.Serialization;

namespace BatchRender.Training.Evaluation;

/// <summary>Accuracies (fractions 0..1) of one language under one quantization mode.</summary>
public sealed record AttributeScores(double Shape, double Colour, double Position, double Size, double Background, double Style, double All)
{
    public static AttributeScores From(IReadOnlyCollection<SceneVerdict> verdicts)
    {
        double F(Func<SceneVerdict, bool> ok) => verdicts.Count == 0 ? 0 : verdicts.Count(ok) / (double)verdicts.Count;
        return new(F(v => v.Shape), F(v => v.Colour), F(v => v.Position), F(v => v.Size), F(v => v.Background), F(v => v.Style), F(v => v.All));
    }
}

/// <summary><see cref="Direction"/>: share of clips moving (or growing) as named. <see cref="Coherence"/>: share of
/// clips whose mean frame-to-frame change is below half the change between two independently seeded renders of
/// the same prompt.</summary>
public sealed record VideoScores(double Direction, double Coherence);

/// <summary><see cref="Region"/>: share of items whose masked region shows the prompted object (colour and shape);
/// <see cref="OutsideUnchanged"/>: every pixel outside every mask equals the input image exactly.</summary>
public sealed record InpaintScores(double Region, bool OutsideUnchanged);

/// <summary>The `batchrender eval --json` object (DESIGN.md): images[mode][language] = scores; video and inpainting
/// measured with the first (reference) mode; analyserOnGroundTruth = share of the evaluation prompts' ground-truth
/// renders on which the analyser gets every attribute right.</summary>
public sealed record EvalReport(
    string Model, int Prompts, IReadOnlyDictionary<string, IReadOnlyDictionary<string, AttributeScores>> Images,
    VideoScores Video, InpaintScores Inpaint, double AnalyserOnGroundTruth)
{
    public static JsonSerializerOptions JsonOptions { get; } = new()
    {
        PropertyNamingPolicy = JsonNamingPolicy.CamelCase,
        WriteIndented = true,
        Converters = { new RoundingConverter() },
    };

    public string ToJson() => JsonSerializer.Serialize(this, JsonOptions);

    public static EvalReport FromJson(string json) =>
        JsonSerializer.Deserialize<EvalReport>(json, JsonOptions) ?? throw new InvalidDataException("eval report: empty JSON");

    // Four decimals are plenty for accuracies and keep the output readable.
    sealed class RoundingConverter : JsonConverter<double>
    {
        public override double Read(ref Utf8JsonReader reader, Type typeToConvert, JsonSerializerOptions options) => reader.GetDouble();
        public override void Write(Utf8JsonWriter writer, double value, JsonSerializerOptions options) => writer.WriteNumberValue(Math.Round(value, 4));
    }
}
