using System.Text;
using BatchRender.Core.Configuration;
using BatchRender.Core.Manifests;
using BatchRender.Core.Messages;
using SixLabors.ImageSharp;
using SixLabors.ImageSharp.PixelFormats;

namespace BatchRender.Core.Tests.Manifests;

/// <summary>Rules, a real folder of real input images, and one-call validate / expand for the manifest tests.</summary>
public sealed class ManifestTestKit : IDisposable
{
    public ManifestTestKit(LimitsOptions? limits = null, RenderDefaultsOptions? defaults = null,
                           IReadOnlyDictionary<string, double>? modelGuidanceScales = null)
    {
        Rules = new ManifestRules(limits ?? new LimitsOptions(), defaults ?? new RenderDefaultsOptions(),
            new HashSet<string>(StringComparer.Ordinal) { "demo", "hunyuan-dit-v1.2" }, modelGuidanceScales);
        Folder = Directory.CreateTempSubdirectory("batchrender-manifest-").FullName;
        Directory.CreateDirectory(Path.Combine(Folder, "inputs"));
        using (var image = new Image<Rgba32>(32, 32, new Rgba32(40, 80, 200))) image.SaveAsPng(Path.Combine(Folder, "inputs", "scene.png"));
        using (var mask = new Image<L8>(32, 32, new L8(255))) mask.SaveAsPng(Path.Combine(Folder, "inputs", "scene-mask.png"));
        using (var photo = new Image<Rgb24>(16, 16, new Rgb24(10, 200, 10))) photo.SaveAsJpeg(Path.Combine(Folder, "inputs", "photo.jpg"));
        using (var gif = new Image<Rgba32>(8, 8)) gif.SaveAsGif(Path.Combine(Folder, "inputs", "anim.png"));
        File.WriteAllText(Path.Combine(Folder, "inputs", "notes.png"), "not an image");
        Inputs = new LocalFolderManifestInputs(Folder);
    }

    public ManifestRules Rules { get; }
    public string Folder { get; }
    public LocalFolderManifestInputs Inputs { get; }
    public ManifestValidator Validator => new(Rules);
    public ManifestExpander Expander => new(Rules);

    public static string TestData(params string[] parts) => Path.Combine([AppContext.BaseDirectory, "TestData", .. parts]);

    public Task<ManifestValidationResult> ValidateAsync(string json, string name = "manifests/batch.json", string? assignedJobId = null) =>
        ValidateAsync(Encoding.UTF8.GetBytes(json), name, assignedJobId);

    public Task<ManifestValidationResult> ValidateAsync(byte[] bytes, string name = "manifests/batch.json", string? assignedJobId = null) =>
        Validator.ValidateAsync(new MemoryStream(bytes), new ManifestSource(name, Inputs) { AssignedJobId = assignedJobId });

    public async Task<List<RenderTaskMessage>> ExpandAsync(byte[] bytes, ManifestValidationResult validated, string prefix = "")
    {
        var messages = new List<RenderTaskMessage>();
        await foreach (var message in Expander.ExpandAsync(new MemoryStream(bytes), validated, prefix)) messages.Add(message);
        return messages;
    }

    /// <summary>A manifest around the given items JSON (and optional extra top-level fields).</summary>
    public static string Manifest(string items, string extra = "") =>
        $$"""{ "schemaVersion": 1, {{extra}} "items": [ {{items}} ] }""";

    public void Dispose()
    {
        try { Directory.Delete(Folder, recursive: true); } catch (IOException) { }
    }
}
