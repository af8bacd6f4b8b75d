using System.Collections.Concurrent;
using System.Security.Cryptography;
using System.Text.Json;
using BatchRender.Core.Messages;
using BatchRender.Core.Transport;
using BatchRender.Worker.Rendering;
using SixLabors.ImageSharp;
using SixLabors.ImageSharp.Formats.Gif;
using SixLabors.ImageSharp.PixelFormats;

namespace BatchRender.Worker.Tests.Infrastructure;

/// <summary>
/// TEST RENDERER, NOT A MODEL: a deterministic stand-in for the TorchSharp pipeline in the worker's pipeline and fault
/// tests (never used by the demo or any product path). Each task's pixels derive from a SHA-256 of its message, so the
/// same task always yields the same bytes and different tasks different bytes; video yields frames and a GIF preview.
/// Models other than <see cref="KnownModels"/> fail as the real engine fails them (UnknownModel).
/// </summary>
public sealed class DeterministicTestRenderEngine : IRenderEngine
{
    public HashSet<string> KnownModels { get; } = ["demo"];
    public const string ModelHash = "test-renderer-0000000000000000";

    /// <summary>How long each group "renders" (lets tests stop a worker mid-render).</summary>
    public TimeSpan RenderDelay { get; set; } = TimeSpan.Zero;

    /// <summary>Every group rendered: the item ids, in call order.</summary>
    public ConcurrentQueue<IReadOnlyList<string>> Groups { get; } = new();
    public int RenderedTasks => Groups.Sum(g => g.Count);

    public Task PreloadAsync(string model, string quantization, CancellationToken cancellationToken = default) =>
        KnownModels.Contains(model) ? Task.CompletedTask : throw new InvalidOperationException($"unknown model '{model}'");

    public async Task<IReadOnlyList<TaskRenderOutcome>> RenderAsync(IReadOnlyList<RenderTaskMessage> group, CancellationToken cancellationToken = default)
    {
        if (RenderDelay > TimeSpan.Zero) await Task.Delay(RenderDelay, cancellationToken);
        cancellationToken.ThrowIfCancellationRequested();
        var outcomes = group.Select(task => KnownModels.Contains(task.Model)
            ? TaskRenderOutcome.Rendered(Render(task))
            : TaskRenderOutcome.Failed(DeadLetterReasons.UnknownModel, $"this worker serves no model '{task.Model}'")).ToList();
        Groups.Enqueue(group.Where(t => KnownModels.Contains(t.Model)).Select(t => $"{t.JobId}/{t.ItemId}").ToList());
        return outcomes;
    }

    public static RenderedOutput Render(RenderTaskMessage task)
    {
        var hash = SHA256.HashData(JsonSerializer.SerializeToUtf8Bytes(task with { }));
        var timings = new Dictionary<string, double> { ["encode"] = 1, ["denoise"] = 2, ["decode"] = 3 };
        if (task.Params.Video is { } video)
        {
            var frames = Enumerable.Range(0, video.Frames).Select(i => Png(task.Params.Width, task.Params.Height, hash, i)).ToList();
            return new RenderedOutput { Png = frames[0], FramePngs = frames, PreviewGif = Gif(task.Params.Width, task.Params.Height, hash, video.Frames),
                ModelHash = ModelHash, TimingsMs = timings };
        }
        return new RenderedOutput { Png = Png(task.Params.Width, task.Params.Height, hash, 0), ModelHash = ModelHash, TimingsMs = timings };
    }

    private static Image<Rgba32> Picture(int width, int height, byte[] hash, int frame)
    {
        var image = new Image<Rgba32>(width, height);
        for (var y = 0; y < height; y++)
            for (var x = 0; x < width; x++)
                image[x, y] = new Rgba32((byte)(hash[0] + x + frame * 8), (byte)(hash[1] + y), (byte)(hash[2] ^ (x * y)), 255);
        return image;
    }

    private static byte[] Png(int width, int height, byte[] hash, int frame)
    {
        using var image = Picture(width, height, hash, frame);
        using var stream = new MemoryStream();
        image.SaveAsPng(stream);
        return stream.ToArray();
    }

    private static byte[] Gif(int width, int height, byte[] hash, int frames)
    {
        using var gif = Picture(width, height, hash, 0);
        for (var i = 1; i < frames; i++)
        {
            using var next = Picture(width, height, hash, i);
            gif.Frames.AddFrame(next.Frames.RootFrame);
        }
        using var stream = new MemoryStream();
        gif.Save(stream, new GifEncoder());
        return stream.ToArray();
    }
}
