namespace BatchRender.Training.Dataset;

/// <summary>The words and phrases each language uses for each attribute value; a caption picks one of them.
/// Public so that tests (and the tokenizer corpus) can check that every attribute is named.</summary>
public sealed class CaptionWords
{
    public required IReadOnlyDictionary<ObjectColour, string[]> Colour { get; init; }
    public required IReadOnlyDictionary<Shape, string[]> Shape { get; init; }
    public required IReadOnlyDictionary<ObjectSize, string[]> Size { get; init; }
    /// <summary>Indexed by <see cref="GridCell.Index"/>. English phrases carry their preposition ("in the top left corner").</summary>
    public required IReadOnlyList<string[]> Position { get; init; }
    public required IReadOnlyDictionary<RenderStyle, string[]> Style { get; init; }
    public required IReadOnlyDictionary<Motion, string[]> Motion { get; init; }
    /// <summary>Generic negative prompts ("blurry, low quality"): the training pairs them with degraded images.</summary>
    public required string[] Degraded { get; init; }

    public static CaptionWords For(Language language) => language == Language.English ? English : Chinese;

    public static CaptionWords English { get; } = new()
    {
        Colour = new Dictionary<ObjectColour, string[]>
        {
            [ObjectColour.Red] = ["red"], [ObjectColour.Orange] = ["orange"], [ObjectColour.Yellow] = ["yellow"],
            [ObjectColour.Green] = ["green"], [ObjectColour.Blue] = ["blue"], [ObjectColour.Purple] = ["purple"],
            [ObjectColour.Pink] = ["pink"], [ObjectColour.White] = ["white"], [ObjectColour.Black] = ["black"],
        },
        Shape = new Dictionary<Shape, string[]>
        {
            [Dataset.Shape.Circle] = ["circle", "disc"], [Dataset.Shape.Square] = ["square"],
            [Dataset.Shape.Triangle] = ["triangle"], [Dataset.Shape.Star] = ["star", "five-pointed star"],
            [Dataset.Shape.Flower] = ["flower", "blossom"],
        },
        Size = new Dictionary<ObjectSize, string[]> { [ObjectSize.Small] = ["small", "little"], [ObjectSize.Large] = ["large", "big"] },
        Position =
        [
            ["in the top left corner", "in the upper left corner", "at the top left"],
            ["at the top", "at the top centre", "in the top middle"],
            ["in the top right corner", "in the upper right corner", "at the top right"],
            ["on the left", "on the left side", "at the middle left"],
            ["in the centre", "in the middle", "in the center"],
            ["on the right", "on the right side", "at the middle right"],
            ["in the bottom left corner", "in the lower left corner", "at the bottom left"],
            ["at the bottom", "at the bottom centre", "in the bottom middle"],
            ["in the bottom right corner", "in the lower right corner", "at the bottom right"],
        ],
        Style = new Dictionary<RenderStyle, string[]>
        {
            [RenderStyle.Flat] = ["flat illustration", "flat style", "flat vector art"],
            [RenderStyle.InkWash] = ["ink wash painting", "ink wash style", "chinese ink painting"],
        },
        Motion = new Dictionary<Motion, string[]>
        {
            [Dataset.Motion.LeftToRight] = ["moving from left to right", "moves from left to right", "travelling from left to right"],
            [Dataset.Motion.RightToLeft] = ["moving from right to left", "moves from right to left", "travelling from right to left"],
            [Dataset.Motion.Up] = ["moving up", "moving upward", "rising from bottom to top"],
            [Dataset.Motion.Down] = ["moving down", "moving downward", "falling from top to bottom"],
            [Dataset.Motion.Grow] = ["growing larger", "slowly growing", "getting bigger"],
            [Dataset.Motion.Bloom] = ["slowly blooming", "opening its petals", "blossoming"],
        },
        Degraded = ["blurry, low quality", "low quality, blurry, noisy", "distorted, blurry", "ugly, low quality, noisy"],
    };

    public static CaptionWords Chinese { get; } = new()
    {
        Colour = new Dictionary<ObjectColour, string[]>
        {
            [ObjectColour.Red] = ["红色"], [ObjectColour.Orange] = ["橙色"], [ObjectColour.Yellow] = ["黄色"],
            [ObjectColour.Green] = ["绿色"], [ObjectColour.Blue] = ["蓝色"], [ObjectColour.Purple] = ["紫色"],
            [ObjectColour.Pink] = ["粉色", "粉红色"], [ObjectColour.White] = ["白色"], [ObjectColour.Black] = ["黑色"],
        },
        Shape = new Dictionary<Shape, string[]>
        {
            [Dataset.Shape.Circle] = ["圆形", "圆"], [Dataset.Shape.Square] = ["正方形", "方块"],
            [Dataset.Shape.Triangle] = ["三角形"], [Dataset.Shape.Star] = ["五角星", "星星"],
            [Dataset.Shape.Flower] = ["花", "花朵"],
        },
        Size = new Dictionary<ObjectSize, string[]> { [ObjectSize.Small] = ["小"], [ObjectSize.Large] = ["大"] },
        Position =
        [
            ["左上角", "左上方"], ["上方中间", "顶部中间", "正上方"], ["右上角", "右上方"],
            ["左侧中间", "左边中间", "左侧"], ["中间", "正中间", "中央"], ["右侧中间", "右边中间", "右侧"],
            ["左下角", "左下方"], ["底部中间", "下方中间", "正下方"], ["右下角", "右下方"],
        ],
        Style = new Dictionary<RenderStyle, string[]>
        {
            [RenderStyle.Flat] = ["扁平风格", "平面插画", "扁平插画风格"],
            [RenderStyle.InkWash] = ["水墨风格", "水墨画", "中国水墨画"],
        },
        Motion = new Dictionary<Motion, string[]>
        {
            [Dataset.Motion.LeftToRight] = ["从左向右移动", "从左往右移动", "由左向右移动"],
            [Dataset.Motion.RightToLeft] = ["从右向左移动", "从右往左移动", "由右向左移动"],
            [Dataset.Motion.Up] = ["向上移动", "从下往上移动", "慢慢上升"],
            [Dataset.Motion.Down] = ["向下移动", "从上往下移动", "慢慢下落"],
            [Dataset.Motion.Grow] = ["慢慢变大", "逐渐变大", "越变越大"],
            [Dataset.Motion.Bloom] = ["慢慢绽放", "缓缓绽放", "渐渐盛开"],
        },
        Degraded = ["模糊, 低质量", "低质量, 模糊, 噪点", "变形, 模糊", "丑陋, 低质量, 噪点"],
    };

    /// <summary>Every word and phrase in the tables (for the tokenizer corpus).</summary>
    public IEnumerable<string> AllPhrases() =>
        Colour.Values.Concat(Shape.Values).Concat(Size.Values).Concat(Position).Concat(Style.Values)
            .Concat(Motion.Values).SelectMany(p => p).Concat(Degraded);
}
