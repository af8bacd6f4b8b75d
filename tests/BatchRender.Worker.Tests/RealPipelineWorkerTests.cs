using BatchRender.Core.Configuration;
using BatchRender.Core.Messages;
using BatchRender.Core.State;
using BatchRender.Core.Storage;
using BatchRender.Core.Tests.Infrastructure;
using BatchRender.Model.Pipelines;
using BatchRender.Model.Tests;
using BatchRender.Model.Tests.Pipelines;
using BatchRender.Worker.Rendering;
using BatchRender.Worker.Tests.Infrastructure;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;
using SixLabors.ImageSharp;

namespace BatchRender.Worker.Tests;

/// <summary>
/// The worker with the production engine: PipelineRenderEngine over the real TorchSharp HunyuanDiTPipeline, on a tiny
/// randomly initialised model directory of the real architecture (renders are noise-like; every code path is real):
/// an image, a video and an inpainting item whose inputs come from the manifests container.
/// </summary>
public sealed class RealPipelineWorkerTests(AzuriteFixture azurite) : IClassFixture<AzuriteFixture>
{
    [Fact]
    public async Task Renders_image_video_and_inpaint_items_with_the_TorchSharp_pipeline_loaded_once()
    {
        using var dir = TestDevice.TempDir();
        var modelDirectory = TinyModelDirectory.Create(Path.Combine(dir.Path, "tiny"));
        var h = new WorkerHarness(azurite, "real");
        const string job = "real-job";

        // Inpaint inputs, as ingest leaves them: blobs in the manifests container.
        var manifests = azurite.BlobService().GetBlobContainerClient(h.Blobs.ManifestsContainer);
        await manifests.CreateIfNotExistsAsync();
        await manifests.UploadBlobAsync("jobs/scene.png", BinaryData.FromBytes(DeterministicTestRenderEngine.Render(WorkerHarness.Image("x", "scene")).Png));
        await manifests.UploadBlobAsync("jobs/mask.png", BinaryData.FromBytes(DeterministicTestRenderEngine.Render(WorkerHarness.Image("x", "mask")).Png));

        RenderTaskMessage Tiny(RenderTaskMessage m) => m with { Model = "tiny", Params = m.Params with { Steps = 2, Quantization = "none" } };
        var image = Tiny(WorkerHarness.Image(job, "img"));
        var video = Tiny(WorkerHarness.Video(job, "vid", frames: 2));
        var inpaint = Tiny(WorkerHarness.Image(job, "fix")) with { Kind = RenderTaskKinds.Inpaint };
        inpaint = inpaint with { Params = inpaint.Params with { Inpaint = new InpaintParams("jobs/scene.png", "jobs/mask.png", 0.8) } };
        await h.SubmitAsync(job, [image, video, inpaint]);

        var loads = 0;
        var configuration = new ConfigurationBuilder().AddInMemoryCollection(new Dictionary<string, string?> { ["Models:tiny:Path"] = modelDirectory }).Build();
        using var engine = new PipelineRenderEngine(options => { loads++; return HunyuanDiTPipeline.Load(options); }, configuration,
            Options.Create(new WorkerOptions { Device = "cpu" }), Options.Create(h.Blobs), azurite.BlobService(), NullLogger<PipelineRenderEngine>.Instance);
        var worker = h.Worker(engine: engine);
        await worker.StartAsync(CancellationToken.None);
        var ended = await h.WaitForJobEndAsync(job, TimeSpan.FromMinutes(2));
        await worker.StopAsync(CancellationToken.None);

        Assert.Equal((JobStatuses.Done, 3), (ended.Status, ended.Counts.Done));
        Assert.Equal(1, loads); // one pipeline per (model, quantization), kept warm
        using (var png = Image.Load(await h.DownloadAsync(BlobLayout.Image(job, "img"))))
            Assert.Equal((64, 64), (png.Width, png.Height));
        Assert.True(await h.Renders.GetBlobClient(BlobLayout.Image(job, "fix")).ExistsAsync());
        var vid = await h.SidecarAsync(job, "vid");
        Assert.Equal([BlobLayout.Frame(job, "vid", 0), BlobLayout.Frame(job, "vid", 1), BlobLayout.Preview(job, "vid")], vid.Outputs.Select(o => o.Blob));
        Assert.False(string.IsNullOrEmpty(vid.ModelHash));
        Assert.NotEqual(DeterministicTestRenderEngine.ModelHash, vid.ModelHash);
        foreach (var output in vid.Outputs) Assert.Equal(output.Sha256, WorkerHarness.Sha256(await h.DownloadAsync(output.Blob)));
    }
}
