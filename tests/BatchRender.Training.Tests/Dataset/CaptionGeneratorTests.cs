using BatchRender.Training.Dataset;

namespace BatchRender.Training.Tests.Dataset;

public class CaptionGeneratorTests
{
    [Theory]
    [InlineData(Language.English)]
    [InlineData(Language.Chinese)]
    public void Complete_captions_name_every_attribute(Language language)
    {
        var words = CaptionWords.For(language);
        var random = new Random(1);
        for (int i = 0; i < 600; i++)
        {
            var style = i % 2 == 0 ? RenderStyle.Flat : RenderStyle.InkWash;
            var scene = (i % 5) switch
            {
                0 => SceneSampler.Clip(random, style),
                1 => SceneSampler.Still(random, 2, style),
                _ => SceneSampler.Still(random, 1, style),
            };
            var caption = CaptionGenerator.Describe(scene, language, random, CaptionOptions.Complete);
            Assert.Contains(words.Style[scene.Style], caption.Contains);
            Assert.Contains(language == Language.English ? "background" : "背景", caption);
            Assert.Contains(words.Colour[scene.Background], caption.Contains);
            foreach (var o in scene.Objects)
            {
                Assert.Contains(words.Colour[o.Colour], caption.Contains);
                Assert.Contains(words.Shape[o.Shape], caption.Contains);
                if (scene.Motion is { } motion)
                {
                    Assert.Contains(words.Motion[motion], caption.Contains);
                    if (motion is not (Motion.Grow or Motion.Bloom)) Assert.Contains(words.Size[o.Size], caption.Contains);
                }
                else
                {
                    Assert.Contains(words.Position[o.Cell.Index], caption.Contains);
                    Assert.Contains(words.Size[o.Size], caption.Contains);
                }
            }
            // No colour other than the scene's is named.
            var named = Palette.Colours.Where(c => words.Colour[c].Any(caption.Contains)).ToHashSet();
            if (caption.Replace("粉红色", "").Contains("红色") is false && caption.Contains("粉红色"))
                named.Remove(ObjectColour.Red); // "粉红色" (pink) contains "红色" (red)
            Assert.Subset(scene.Objects.Select(o => o.Colour).Append(scene.Background).ToHashSet(), named);
        }
    }

    [Fact]
    public void Captions_vary_in_wording_and_order()
    {
        var scene = new SceneSpec(ObjectColour.Blue, [new SceneObject(Shape.Star, ObjectColour.Red, new GridCell(0, 0), ObjectSize.Large)], RenderStyle.Flat);
        var random = new Random(3);
        foreach (var language in Enum.GetValues<Language>())
        {
            var captions = Enumerable.Range(0, 200).Select(_ => CaptionGenerator.Describe(scene, language, random, CaptionOptions.Complete)).ToHashSet();
            Assert.True(captions.Count >= 30, $"{language}: only {captions.Count} distinct captions");
            // The background comes first in some captions and last in others.
            string bg = language == Language.English ? "blue" : "蓝色";
            string star = language == Language.English ? "star" : "星";
            Assert.Contains(captions, c => c.IndexOf(bg, StringComparison.Ordinal) < c.IndexOf(star, StringComparison.Ordinal));
            Assert.Contains(captions, c => c.IndexOf(bg, StringComparison.Ordinal) > c.IndexOf(star, StringComparison.Ordinal));
        }
        // The brief's examples are among the phrasings.
        var english = Enumerable.Range(0, 2000).Select(_ => CaptionGenerator.Describe(scene with { Style = RenderStyle.Flat }, Language.English, random)).ToHashSet();
        Assert.Contains("a large red star in the top left corner on a blue background", english);
        var chinese = Enumerable.Range(0, 2000).Select(_ => CaptionGenerator.Describe(scene, Language.Chinese, random)).ToHashSet();
        Assert.Contains("蓝色背景左上角有一个大的红色五角星", chinese);
        var bloom = new SceneSpec(ObjectColour.Black, [new SceneObject(Shape.Flower, ObjectColour.Yellow, GridCell.Centre, ObjectSize.Large)], RenderStyle.Flat, Motion.Bloom);
        Assert.Contains("一朵黄色的花慢慢绽放", Enumerable.Range(0, 2000).Select(_ => CaptionGenerator.Describe(bloom, Language.Chinese, random)).ToHashSet());
    }

    [Fact]
    public void Ink_wash_is_always_named_and_flat_only_sometimes_in_training()
    {
        var random = new Random(4);
        var flat = new SceneSpec(ObjectColour.Blue, [new SceneObject(Shape.Circle, ObjectColour.Red, GridCell.Centre, ObjectSize.Small)], RenderStyle.Flat);
        var ink = flat with { Style = RenderStyle.InkWash };
        for (int i = 0; i < 100; i++)
        {
            Assert.Contains(CaptionWords.English.Style[RenderStyle.InkWash], CaptionGenerator.Describe(ink, Language.English, random).Contains);
            Assert.Contains(CaptionWords.Chinese.Style[RenderStyle.InkWash], CaptionGenerator.Describe(ink, Language.Chinese, random).Contains);
        }
        int named = Enumerable.Range(0, 400).Count(_ => CaptionWords.English.Style[RenderStyle.Flat].Any(CaptionGenerator.Describe(flat, Language.English, random).Contains));
        Assert.InRange(named, 150, 250);
    }
}
