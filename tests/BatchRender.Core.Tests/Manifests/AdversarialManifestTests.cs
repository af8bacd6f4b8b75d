using System.Text;
using BatchRender.Core.Configuration;
using BatchRender.Core.Manifests;

namespace BatchRender.Core.Tests.Manifests;

/// <summary>
/// Hostile and broken manifests: each must fail validation with a problem at the exact JSON path that names what is
/// wrong, and the expansion pass must refuse to run on the result (so nothing is ever enqueued).
/// </summary>
public sealed class AdversarialManifestTests : IDisposable
{
    public sealed record Case(string Name, byte[] Bytes, string Path, string Message, LimitsOptions? Limits = null)
    {
        public override string ToString() => Name;
    }

    private const string Ok = """{ "id": "a", "prompt": "a red star" }""";
    private static Case Text(string name, string json, string path, string message, LimitsOptions? limits = null) =>
        new(name, Encoding.UTF8.GetBytes(json), path, message, limits);
    private static Case Item(string name, string itemJson, string path, string message, LimitsOptions? limits = null) =>
        Text(name, ManifestTestKit.Manifest(itemJson), path, message, limits);
    private static Case Inpaint(string name, string image, string message) =>
        Item(name, $$"""{ "id": "a", "prompt": "p", "inpaint": { "image": {{System.Text.Json.JsonSerializer.Serialize(image)}}, "mask": "inputs/scene-mask.png" } }""",
            "items[0].inpaint.image", message);

    public static TheoryData<Case> Cases() => new(
    [
        // Malformed JSON
        Text("truncated", """{ "schemaVersion": 1, "items": [ { "id": "a", "prompt": "x" }""", "items[0]", "the JSON ends before every object and array is closed"),
        Text("truncated inside a string", """{ "schemaVersion": 1, "items": [ { "id": "a", "prompt": "a red""", "items[0].prompt", "the JSON ends in the middle of a value"),
        Text("trailing garbage", ManifestTestKit.Manifest(Ok) + " }{", "$", "there is more text after the end of the JSON document"),
        Text("trailing comma", """{ "schemaVersion": 1, "items": [ { "id": "a", "prompt": "x" }, ] }""", "items[0]", "a trailing comma before '}' or ']' is not allowed"),
        Text("line comment", "{ \"schemaVersion\": 1, // version\n \"items\": [ " + Ok + " ] }", "schemaVersion", "comments ('//' or '/* */') are not allowed in JSON"),
        Text("empty file", "", "$", "the file is empty"),
        Text("root is an array", "[ " + Ok + " ]", "$", "a manifest must be a JSON object"),
        Text("unescaped control character", "{ \"schemaVersion\": 1, \"items\": [ { \"id\": \"a\", \"prompt\": \"a\u0001b\" } ] }", "items[0].prompt", "control character U+0001 must be escaped"),
        // Wrong types
        Item("width as a string", """{ "id": "a", "prompt": "p", "width": "128" }""", "items[0].width", "must be a multiple of 16 between 64 and 2048, got a string (\"128\")"),
        Text("items is an object", """{ "schemaVersion": 1, "items": { "id": "a", "prompt": "p" } }""", "items", "must be an array of items"),
        Item("item is a string", "\"draw a star\"", "items[0]", "must be an object"),
        Item("prompt is a number", """{ "id": "a", "prompt": 42 }""", "items[0].prompt", "must be a string, got 42"),
        Item("video is an array", """{ "id": "a", "prompt": "p", "video": [24, 8] }""", "items[0].video", "must be an object ({ \"frames\""),
        // Duplicates
        Item("duplicate ids", Ok + ", " + Ok, "items[1].id", "duplicate id \"a\": items[0] has it already"),
        Item("duplicate keys", """{ "id": "a", "prompt": "p", "prompt": "q" }""", "items[0].prompt", "duplicate key 'prompt'"),
        Text("duplicate top-level key", """{ "schemaVersion": 1, "schemaVersion": 1, "items": [ { "id": "a", "prompt": "p" } ] }""", "schemaVersion", "duplicate key 'schemaVersion'"),
        // Path traversal in ids
        Item("id with ../", """{ "id": "../x", "prompt": "p" }""", "items[0].id", "\"../x\" is not a valid id: it contains '/' at position 3"),
        Item("id _job", """{ "id": "_job", "prompt": "p" }""", "items[0].id", "\"_job\" is not a valid id: it starts with '_'"),
        Item("id .", """{ "id": ".", "prompt": "p" }""", "items[0].id", "\".\" is not a valid id: it starts with '.'"),
        Item("id ..", """{ "id": "..", "prompt": "p" }""", "items[0].id", "\"..\" is not a valid id: it starts with '.'"),
        Item("id with a trailing dot", """{ "id": "star.", "prompt": "p" }""", "items[0].id", "it ends with '.'"),
        Text("jobId with ../", ManifestTestKit.Manifest(Ok, "\"jobId\": \"../other-job\","), "jobId", "\"../other-job\" is not a valid job id"),
        // Path traversal in inpaint paths
        Inpaint("inpaint ../../secret.png", "../../secret.png", "contains '..', which would leave the manifest's folder"),
        Inpaint("inpaint /etc/passwd", "/etc/passwd", "is an absolute path"),
        Inpaint("inpaint URL", "https://evil.example/x.png", "is a URL"),
        Inpaint("inpaint C:\\x", "C:\\x.png", "contains a backslash"),
        Inpaint("inpaint C:/x", "C:/x.png", "contains ':' (a drive letter or URL scheme)"),
        Inpaint("inpaint a/../../b", "a/../../b.png", "contains '..'"),
        Inpaint("inpaint missing file", "inputs/nope.png", "\"inputs/nope.png\" does not exist in the manifest's folder"),
        Inpaint("inpaint GIF named .png", "inputs/anim.png", "must be a PNG or JPEG image, but it is a GIF image"),
        Inpaint("inpaint text file", "inputs/notes.png", "must be a PNG or JPEG image, but it is not an image"),
        Inpaint("inpaint folder", "inputs", "is a folder, not a file"),
        // Huge and wrong numbers
        Item("seed 1e400", """{ "id": "a", "prompt": "p", "seed": 1e400 }""", "items[0].seed", "got 1e400 (beyond the range of a number)"),
        Item("seed 2^64", """{ "id": "a", "prompt": "p", "seed": 18446744073709551616 }""", "items[0].seed", "must be a whole number from 0 to 9223372036854775807 (2^63-1), got 18446744073709551616 (too large)"),
        Item("seed -1", """{ "id": "a", "prompt": "p", "seed": -1 }""", "items[0].seed", "got -1"),
        Item("steps 2.5", """{ "id": "a", "prompt": "p", "steps": 2.5 }""", "items[0].steps", "must be a whole number from 1 to 1000, got 2.5"),
        Item("guidance 31", """{ "id": "a", "prompt": "p", "guidanceScale": 31 }""", "items[0].guidanceScale", "must be a number from 0 to 30, got 31"),
        // Limits
        Item("too many items", Ok + ", " + Ok.Replace("\"a\"", "\"b\"") + ", " + Ok.Replace("\"a\"", "\"c\""), "items", "has 3 items; the limit is 2 per manifest (Limits:MaxItems)",
            new LimitsOptions { MaxItems = 2 }),
        Item("oversize prompt", """{ "id": "a", "prompt": "abcdefghijk" }""", "items[0].prompt", "is 11 characters long; the limit is 10 (Limits:MaxPromptLength)",
            new LimitsOptions { MaxPromptLength = 10 }),
        Item("oversize negative prompt", """{ "id": "a", "prompt": "p", "negativePrompt": "模糊模糊模糊模糊模糊模" }""", "items[0].negativePrompt", "is 11 characters long",
            new LimitsOptions { MaxPromptLength = 10 }),
        Item("width not a multiple of 16", """{ "id": "a", "prompt": "p", "width": 100 }""", "items[0].width", "must be a multiple of 16 between 64 and 2048, got 100"),
        Item("pixels over the limit", """{ "id": "a", "prompt": "p", "width": 512, "height": 512 }""", "items[0]", "width x height is 512 x 512 = 262,144 pixels, over the limit of 65,536 pixels",
            new LimitsOptions { MaxPixels = 256 * 256 }),
        Item("frames over the limit", """{ "id": "a", "prompt": "p", "video": { "frames": 241 } }""", "items[0].video.frames", "must be a whole number from 2 to 240 (Limits:MaxFrames), got 241"),
        Item("fps 0", """{ "id": "a", "prompt": "p", "video": { "fps": 0 } }""", "items[0].video.fps", "must be a whole number from 1 to 60, got 0"),
        Item("motionScale 11", """{ "id": "a", "prompt": "p", "video": { "motionScale": 11 } }""", "items[0].video.motionScale", "must be a number from 0 to 10, got 11"),
        Item("strength 0", """{ "id": "a", "prompt": "p", "inpaint": { "image": "inputs/scene.png", "mask": "inputs/scene-mask.png", "strength": 0 } }""",
            "items[0].inpaint.strength", "must be a number greater than 0 and at most 1, got 0"),
        // Unknown fields
        Item("unknown field widht", """{ "id": "a", "prompt": "p", "widht": 128 }""", "items[0].widht", "unknown field 'widht' in an item (did you mean 'width'?)"),
        Item("field in the wrong case", """{ "id": "a", "Prompt": "p" }""", "items[0].Prompt", "(did you mean 'prompt'? field names are case-sensitive)"),
        Item("video field on the item", """{ "id": "a", "prompt": "p", "frames": 24 }""", "items[0].frames", "'frames' goes inside the item's 'video' object"),
        Text("unknown top-level field", ManifestTestKit.Manifest(Ok, "\"defualts\": {},"), "defualts", "unknown field 'defualts' in the manifest (did you mean 'defaults'?)"),
        Item("unknown field far from any", """{ "id": "a", "prompt": "p", "colour": "red" }""", "items[0].colour", "its fields are: id, prompt, width"),
        // Required fields and versions
        Text("schemaVersion 2", """{ "schemaVersion": 2, "items": [ { "id": "a", "prompt": "p" } ] }""", "schemaVersion", "must be 1 (the only schema version there is), got 2"),
        Text("schemaVersion missing", """{ "items": [ { "id": "a", "prompt": "p" } ] }""", "$", "missing required field 'schemaVersion'"),
        Text("items missing", """{ "schemaVersion": 1 }""", "$", "missing required field 'items'"),
        Text("items empty", """{ "schemaVersion": 1, "items": [] }""", "items", "must contain at least one item"),
        Item("prompt missing", """{ "id": "a" }""", "items[0]", "missing required field 'prompt'"),
        Item("inpaint mask missing", """{ "id": "a", "prompt": "p", "inpaint": { "image": "inputs/scene.png" } }""", "items[0].inpaint", "missing required field 'mask'"),
        // Text content
        Item("control character in prompt", """{ "id": "a", "prompt": "ring \u0007 the bell" }""", "items[0].prompt",
            "contains the control character U+0007 at character 6; only tab, line feed and carriage return are allowed"),
        Item("C1 control character in prompt", """{ "id": "a", "prompt": "x\u0085y" }""", "items[0].prompt", "contains the control character U+0085 at character 2"),
        Item("empty prompt after trim", """{ "id": "a", "prompt": " \t\n\u3000 " }""", "items[0].prompt", "must not be empty or only whitespace"),
        // Encodings
        new("UTF-16 BOM", [0xFF, 0xFE, .. Encoding.Unicode.GetBytes(ManifestTestKit.Manifest(Ok))], "$", "encoded as UTF-16 (little-endian)"),
        new("UTF-16 BE BOM", [0xFE, 0xFF, .. Encoding.BigEndianUnicode.GetBytes(ManifestTestKit.Manifest(Ok))], "$", "encoded as UTF-16 (big-endian)"),
        new("UTF-32 BOM", [0xFF, 0xFE, 0, 0, .. new UTF32Encoding(false, false).GetBytes(ManifestTestKit.Manifest(Ok))], "$", "encoded as UTF-32 (little-endian)"),
        new("UTF-16 without BOM", Encoding.Unicode.GetBytes(ManifestTestKit.Manifest(Ok)), "$", "looks like UTF-16 or UTF-32 without a byte-order mark"),
        new("invalid UTF-8 in a prompt", [.. "{ \"schemaVersion\": 1, \"items\": [ { \"id\": \"a\", \"prompt\": \"bad "u8, 0xC3, 0x28, .. " byte\" } ] }"u8],
            "items[0].prompt", "contains bytes that are not valid UTF-8"),
        new("invalid UTF-8 in a key", [.. "{ \"schemaVersion\": 1, \"items\": [ { \"id\": \"a\", \"prompt\": \"p\", \"x"u8, 0xFF, .. "\": 1 } ] }"u8],
            "items[0][\"x\uFFFD\"]", "the key contains bytes that are not valid UTF-8"),
        new("Latin-1 é outside strings", [.. "{ \"schemaVersion\": 1, "u8, 0xE9, .. " \"items\": [] }"u8], "schemaVersion", "save the manifest as UTF-8"),
        Item("lone surrogate escape", """{ "id": "a", "prompt": "star \uD800 here" }""".Replace("\uD800", "\\uD800"), "items[0].prompt", "a lone surrogate"),
        // Nesting
        Text("10,000 nested arrays at the root", new string('[', 10_000), string.Concat(Enumerable.Repeat("[0]", 63)), "nested deeper than 64 levels"),
        Text("deep nesting in an unknown field", """{ "schemaVersion": 1, "items": [ { "id": "a", "prompt": "p", "extra": """ + new string('[', 10_000),
            "items[0].extra" + string.Concat(Enumerable.Repeat("[0]", 60)), "objects and arrays are nested deeper than 64 levels"),
        // Nulls, combinations, references
        Item("null seed", """{ "id": "a", "prompt": "p", "seed": null }""", "items[0].seed", "must not be null; leave 'seed' out to use the default"),
        Item("null id", """{ "id": null, "prompt": "p" }""", "items[0].id", "must not be null"),
        Item("both video and inpaint", """{ "id": "a", "prompt": "p", "video": { "frames": 8 }, "inpaint": { "image": "inputs/scene.png", "mask": "inputs/scene-mask.png" } }""",
            "items[0]", "has both 'video' and 'inpaint'"),
        Text("unknown model", ManifestTestKit.Manifest(Ok, "\"model\": \"hunyuan-dit-v1.1\","), "model",
            "\"hunyuan-dit-v1.1\" is not a model the workers serve (served: demo, hunyuan-dit-v1.2); did you mean 'hunyuan-dit-v1.2'?"),
        Item("unknown sampler", """{ "id": "a", "prompt": "p", "sampler": "euler" }""", "items[0].sampler", "must be one of 'ddpm', 'ddim', 'dpmsolver++', got \"euler\""),
        Item("sampler in capitals", """{ "id": "a", "prompt": "p", "sampler": "DDIM" }""", "items[0].sampler", "(did you mean 'ddim'?)"),
        Item("unknown quantization", """{ "id": "a", "prompt": "p", "quantization": "int4" }""", "items[0].quantization", "must be one of 'none', 'bf16', 'int8-dynamic'"),
    ]);

    private readonly List<ManifestTestKit> _kits = [];

    [Theory]
    [MemberData(nameof(Cases))]
    public async Task Rejected_with_path_and_message_and_nothing_enqueued(Case c)
    {
        var kit = new ManifestTestKit(c.Limits);
        _kits.Add(kit);

        var result = await kit.ValidateAsync(c.Bytes);

        Assert.False(result.IsValid);
        Assert.True(result.Problems.Any(p => p.Path == c.Path && p.Message.Contains(c.Message, StringComparison.Ordinal)),
            $"expected '{c.Path}: …{c.Message}…' among:\n{string.Join("\n", result.Describe())}");
        Assert.Equal(result.Problems.Count, result.TotalProblems);
        Assert.True(ManifestIds.IsValid(result.JobId), result.JobId);
        await Assert.ThrowsAsync<InvalidOperationException>(() => kit.ExpandAsync(c.Bytes, result));
    }

    [Fact]
    public void The_suite_has_at_least_30_cases() => Assert.True(Cases().Count >= 30);

    public void Dispose()
    {
        foreach (var kit in _kits) kit.Dispose();
    }
}
