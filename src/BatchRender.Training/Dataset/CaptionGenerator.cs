namespace BatchRender.Training.Dataset;

/// <summary>How much of a scene a caption names.</summary>
public sealed record CaptionOptions
{
    /// <summary>Name every attribute (evaluation prompts). Otherwise flat style, which is the default look, is named
    /// only half of the time, and a video's background two times in three.</summary>
    public bool NameEverything { get; init; }

    public static CaptionOptions Training { get; } = new();
    public static CaptionOptions Complete { get; } = new() { NameEverything = true };
}

/// <summary>Writes English and Chinese captions of a scene from several templates each, with the word order,
/// synonyms and style wording varying with the <see cref="Random"/> it is given.</summary>
public static class CaptionGenerator
{
    public static string Describe(SceneSpec scene, Language language, Random random, CaptionOptions? options = null)
    {
        options ??= CaptionOptions.Training;
        var words = CaptionWords.For(language);
        bool nameStyle = scene.Style == RenderStyle.InkWash || options.NameEverything || random.Next(2) == 0;
        bool nameBackground = !scene.IsVideo || options.NameEverything || random.Next(3) != 0;
        string body = language == Language.English
            ? English(scene, words, random, nameBackground)
            : Chinese(scene, words, random, nameBackground);
        return nameStyle ? WithStyle(body, Pick(random, words.Style[scene.Style]), scene.Style, language, random) : body;
    }

    /// <summary>A generic negative prompt ("blurry, low quality" / "模糊, 低质量").</summary>
    public static string DegradedPrompt(Language language, Random random) => Pick(random, CaptionWords.For(language).Degraded);

    // ---- English ----

    static string English(SceneSpec scene, CaptionWords w, Random r, bool nameBackground)
    {
        string bg = Pick(r, w.Colour[scene.Background]);
        if (scene.Motion is { } motion)
        {
            var o = scene.Objects[0];
            string subject = motion switch
            {
                Motion.Bloom => WithArticle($"{Pick(r, w.Colour[o.Colour])} flower"),
                Motion.Grow => WithArticle($"{Pick(r, w.Colour[o.Colour])} {Pick(r, w.Shape[o.Shape])}"),
                _ => EnglishObject(o, w, r),
            };
            string clip = $"{subject} {Pick(r, w.Motion[motion])}";
            if (!nameBackground) return clip;
            return r.Next(2) == 0 ? $"{clip} on a {bg} background" : $"{clip}, {bg} background";
        }
        if (scene.Objects.Count == 1)
        {
            var o = scene.Objects[0];
            string obj = EnglishObject(o, w, r), at = Pick(r, w.Position[o.Cell.Index]);
            return r.Next(5) switch
            {
                0 => $"{obj} {at} on a {bg} background",
                1 => $"{obj} {at}, {bg} background",
                2 => $"a {bg} background with {obj} {at}",
                3 => $"{at}, {obj} on a {bg} background",
                _ => $"{obj} sits {at} against a {bg} background",
            };
        }
        var (a, b) = r.Next(2) == 0 ? (scene.Objects[0], scene.Objects[1]) : (scene.Objects[1], scene.Objects[0]);
        string first = $"{EnglishObject(a, w, r)} {Pick(r, w.Position[a.Cell.Index])}";
        string second = $"{EnglishObject(b, w, r)} {Pick(r, w.Position[b.Cell.Index])}";
        return r.Next(3) switch
        {
            0 => $"{first} and {second} on a {bg} background",
            1 => $"a {bg} background with {first} and {second}",
            _ => $"{first}, {second}, {bg} background",
        };
    }

    static string EnglishObject(SceneObject o, CaptionWords w, Random r) =>
        WithArticle($"{Pick(r, w.Size[o.Size])} {Pick(r, w.Colour[o.Colour])} {Pick(r, w.Shape[o.Shape])}");

    static string WithArticle(string phrase) => ("aeiou".Contains(phrase[0]) ? "an " : "a ") + phrase;

    // ---- Chinese ----

    static string Chinese(SceneSpec scene, CaptionWords w, Random r, bool nameBackground)
    {
        string bg = Pick(r, w.Colour[scene.Background]);
        if (scene.Motion is { } motion)
        {
            var o = scene.Objects[0];
            string shape = Pick(r, w.Shape[o.Shape]);
            string colour = Pick(r, w.Colour[o.Colour]);
            string subject = motion is Motion.Grow or Motion.Bloom
                ? $"一{Measure(shape)}{colour}{(r.Next(2) == 0 ? "的" : "")}{shape}"
                : $"一{Measure(shape)}{ChineseObject(o, shape, colour, w, r)}";
            string clip = $"{subject}{Pick(r, w.Motion[motion])}";
            if (!nameBackground) return clip;
            return r.Next(2) == 0 ? $"{bg}背景上{clip}" : $"{clip}，背景是{bg}";
        }
        if (scene.Objects.Count == 1)
        {
            var o = scene.Objects[0];
            string obj = ChineseCounted(o, w, r), at = Pick(r, w.Position[o.Cell.Index]);
            return r.Next(5) switch
            {
                0 => $"{bg}背景{at}有{obj}",
                1 => $"{at}有{obj}，背景是{bg}",
                2 => $"{obj}位于{at}，{bg}背景",
                3 => $"在{bg}的背景上，{at}画着{obj}",
                _ => $"{bg}背景上，{obj}在{at}",
            };
        }
        var (a, b) = r.Next(2) == 0 ? (scene.Objects[0], scene.Objects[1]) : (scene.Objects[1], scene.Objects[0]);
        string atA = Pick(r, w.Position[a.Cell.Index]), atB = Pick(r, w.Position[b.Cell.Index]);
        string objA = ChineseCounted(a, w, r), objB = ChineseCounted(b, w, r);
        return r.Next(3) switch
        {
            0 => $"{bg}背景上，{atA}有{objA}，{atB}有{objB}",
            1 => $"{atA}是{objA}，{atB}是{objB}，背景是{bg}",
            _ => $"在{bg}的背景上，{objA}位于{atA}，{objB}位于{atB}",
        };
    }

    // "一个大的红色五角星" / "一颗红色的大星星" / "一朵小的黄色花".
    static string ChineseCounted(SceneObject o, CaptionWords w, Random r)
    {
        string shape = Pick(r, w.Shape[o.Shape]);
        return $"一{Measure(shape)}{ChineseObject(o, shape, Pick(r, w.Colour[o.Colour]), w, r)}";
    }

    static string ChineseObject(SceneObject o, string shape, string colour, CaptionWords w, Random r)
    {
        string size = Pick(r, w.Size[o.Size]);
        return r.Next(2) == 0 ? $"{size}的{colour}{shape}" : $"{colour}的{size}{shape}";
    }

    static string Measure(string shape) => shape switch
    {
        "花" or "花朵" => "朵",
        "星星" => "颗",
        _ => "个",
    };

    // ---- Style ----

    static string WithStyle(string body, string style, RenderStyle kind, Language language, Random r)
    {
        if (language == Language.English)
        {
            // "an ink wash painting of ..." reads well only with a noun ("painting", not "style") before a plain noun phrase.
            bool nounPhrase = (body.StartsWith("a ") || body.StartsWith("an ")) && !body.Contains(" sits ") && !style.EndsWith(" style");
            return r.Next(3) switch
            {
                0 when nounPhrase => $"{WithArticle(style)} of {body}",
                1 => $"{style}: {body}",
                _ => $"{body}, {style}",
            };
        }
        return r.Next(2) == 0 ? $"{body}，{style}" : $"{style}：{body}";
    }

    static string Pick(Random random, string[] options) => options[random.Next(options.Length)];
}
