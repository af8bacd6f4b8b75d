using BatchRender.Training.Dataset;

namespace BatchRender.Training.Tokenizers;

/// <summary>The text the demo tokenizers are built from: every phrase of both languages' caption tables, the generic
/// negative prompts, and a seeded sample of full captions (stills, two-object scenes and clips, as training and as
/// evaluation word them), so that every template's word order is represented.</summary>
public static class DemoCorpus
{
    public static IEnumerable<string> Lines(int seed, int captions)
    {
        foreach (var language in Enum.GetValues<Language>())
            foreach (var phrase in CaptionWords.For(language).AllPhrases())
                yield return phrase;
        // Every letter in both cases and every digit, so a prompt typed differently still has pieces.
        yield return "abcdefghijklmnopqrstuvwxyz ABCDEFGHIJKLMNOPQRSTUVWXYZ 0123456789";
        var random = new Random(seed);
        for (int i = 0; i < captions; i++)
        {
            var style = random.Next(5) < 2 ? RenderStyle.InkWash : RenderStyle.Flat;
            var scene = random.Next(5) switch
            {
                0 => SceneSampler.Clip(random, style),
                1 => SceneSampler.Still(random, 2, style),
                _ => SceneSampler.Still(random, 1, style),
            };
            var language = i % 2 == 0 ? Language.English : Language.Chinese;
            var options = random.Next(2) == 0 ? CaptionOptions.Complete : CaptionOptions.Training;
            var caption = CaptionGenerator.Describe(scene, language, random, options);
            // People capitalise the first word; the T5 stream is case-sensitive (BERT's lower-cases).
            yield return language == Language.English && random.Next(4) == 0 ? char.ToUpperInvariant(caption[0]) + caption[1..] : caption;
        }
    }

    /// <summary>The Chinese words and phrases that name attribute values (colours, shapes, positions, styles, motions).</summary>
    public static IEnumerable<string> ChineseAttributeWords()
    {
        var w = CaptionWords.Chinese;
        return w.Colour.Values.Concat(w.Shape.Values).Concat(w.Position).Concat(w.Style.Values).Concat(w.Motion.Values)
            .SelectMany(p => p).Distinct();
    }
}
