using System.Security.Cryptography;
using System.Text.Json;
using BatchRender.Cli.Tests.Infrastructure;
using BatchRender.Model.Tests.Pipelines;
using SixLabors.ImageSharp;
using SixLabors.ImageSharp.PixelFormats;

namespace BatchRender.Cli.Tests;

/// <summary>
/// <c>render</c> with a tiny randomly initialised model of the real architecture (renders are noise-like; every code path
/// of the pipeline and of the output layout runs for real).
/// </summary>
[Collection(CliCollection.Name)]
public sealed class RenderCommandTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("batchrender-cli-render-").FullName;

    [Fact]
    public async Task Renders_images_video_and_inpainting_into_the_worker_layout_with_report_and_gallery()
    {
        var model = TinyModelDirectory.Create(Path.Combine(_dir, "tiny"));
        var config = Manifests.Write(_dir, $$"""{ "Models": { "demo": { "Path": {{JsonSerializer.Serialize(model)}} } }, "Worker": { "BatchSize": 2, "Threads": 2 } }""", "config.json");
        var folder = Path.Combine(_dir, "job");
        Directory.CreateDirectory(Path.Combine(folder, "inputs"));
        using (var image = new Image<Rgb24>(64, 64, new Rgb24(20, 40, 200))) image.SaveAsPng(Path.Combine(folder, "inputs", "scene.png"));
        using (var mask = new Image<L8>(64, 64, new L8(0)))
        {
            for (var y = 16; y < 48; y++) for (var x = 16; x < 48; x++) mask[x, y] = new L8(255);
            mask.SaveAsPng(Path.Combine(folder, "inputs", "scene-mask.png"));
        }
        var manifest = Manifests.Write(folder, """
            {
              "schemaVersion": 1,
              "jobId": "local-render",
              "defaults": { "width": 64, "height": 64, "steps": 2, "guidanceScale": 4.0, "quantization": "none" },
              "items": [
                { "id": "star", "prompt": "a red star in the top left corner", "seed": 7 },
                { "id": "star-zh", "prompt": "蓝色背景左上角有一个大的红色五角星", "seed": 8 },
                { "id": "bloom", "prompt": "a yellow flower", "video": { "frames": 2, "fps": 4 } },
                { "id": "repair", "prompt": "a green square in the middle", "inpaint": { "image": "inputs/scene.png", "mask": "inputs/scene-mask.png", "strength": 0.8 } }
              ]
            }
            """);
        var output = Path.Combine(_dir, "out");

        var result = await CliHarness.RunAsync("render", manifest, "--out", output, "--config", config);
        Assert.True(result.ExitCode == 0, result.ToString());

        var job = Path.Combine(output, "local-render");
        foreach (var id in new[] { "star", "star-zh", "repair" })
        {
            var png = await File.ReadAllBytesAsync(Path.Combine(job, $"{id}.png"));
            using (var decoded = Image.Load<Rgb24>(png)) Assert.Equal((64, 64), (decoded.Width, decoded.Height));
            using var sidecar = JsonDocument.Parse(await File.ReadAllBytesAsync(Path.Combine(job, $"{id}.json")));
            var output0 = sidecar.RootElement.GetProperty("outputs")[0];
            Assert.Equal($"local-render/{id}.png", output0.GetProperty("blob").GetString());
            Assert.Equal(Convert.ToHexStringLower(SHA256.HashData(png)), output0.GetProperty("sha256").GetString());
            Assert.Equal("demo", sidecar.RootElement.GetProperty("model").GetString());
            Assert.False(string.IsNullOrEmpty(sidecar.RootElement.GetProperty("modelHash").GetString()));
        }
        Assert.True(File.Exists(Path.Combine(job, "bloom", "frame-00000.png")));
        Assert.True(File.Exists(Path.Combine(job, "bloom", "frame-00001.png")));
        Assert.True(File.Exists(Path.Combine(job, "bloom.gif")));
        Assert.True(File.Exists(Path.Combine(job, "bloom.json")));
        Assert.Equal(await File.ReadAllBytesAsync(manifest), await File.ReadAllBytesAsync(Path.Combine(job, "_job", "manifest.json")));

        using var report = JsonDocument.Parse(await File.ReadAllBytesAsync(Path.Combine(job, "_job", "report.json")));
        Assert.Equal("done", report.RootElement.GetProperty("status").GetString());
        Assert.Equal(4, report.RootElement.GetProperty("counts").GetProperty("done").GetInt32());
        var gallery = await File.ReadAllTextAsync(Path.Combine(job, "_job", "index.html"));
        Assert.Contains("../star.png", gallery);
        Assert.Contains("../bloom.gif", gallery);
        Assert.Contains("gallery:", result.Out);
    }

    [Fact]
    public async Task An_invalid_manifest_exits_2_writes_errors_json_and_renders_nothing()
    {
        var manifest = Manifests.Write(Path.Combine(_dir, "bad"), Manifests.Invalid);
        var output = Path.Combine(_dir, "out");
        var result = await CliHarness.RunAsync("render", manifest, "--out", output);
        Assert.True(result.ExitCode == 2, result.ToString());
        Assert.Contains("items[0].width", result.Error);
        Assert.Contains("items[0].width", await File.ReadAllTextAsync(Path.Combine(output, "broken-job", "_job", "errors.json")));
        Assert.Equal(["errors.json"], Directory.GetFiles(Path.Combine(output, "broken-job"), "*", SearchOption.AllDirectories).Select(Path.GetFileName));
    }

    [Fact]
    public async Task A_missing_demo_model_says_to_train_it()
    {
        var config = Manifests.Write(_dir, """{ "Models": { "demo": { "Path": "/nonexistent/models/demo" } } }""", "missing.json");
        var manifest = Manifests.Write(Path.Combine(_dir, "m"), Manifests.Images("needs-model", 1));
        var result = await CliHarness.RunAsync("render", manifest, "--out", Path.Combine(_dir, "out2"), "--config", config);
        Assert.Equal(2, result.ExitCode);
        Assert.Contains("batchrender train", result.Error);
    }

    public void Dispose()
    {
        try { Directory.Delete(_dir, recursive: true); } catch (IOException) { }
    }
}
