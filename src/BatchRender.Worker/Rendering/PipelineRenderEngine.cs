using System.Collections.Concurrent;
using System.Diagnostics;
using Azure;
using Azure.Storage.Blobs;
using BatchRender.Core.Configuration;
using BatchRender.Core.Messages;
using BatchRender.Core.Transport;
using BatchRender.Model.Pipelines;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace BatchRender.Worker.Rendering;

/// <summary>
/// Renders with the TorchSharp pipeline. One pipeline per (model, quantization) is loaded on first use (or by
/// <see cref="PreloadAsync"/> at start-up) through the pipeline factory the host registers (<c>AddRenderPipeline</c>) and kept warm
/// for the life of the process. Model names map to diffusers directories through <c>Models:{name}:Path</c>; a task
/// naming a model this worker does not know is a permanent failure (a misconfigured pool), not a retry.
/// </summary>
public sealed class PipelineRenderEngine : IRenderEngine, IDisposable
{
    private readonly Func<PipelineLoadOptions, IRenderPipeline> _factory;
    private readonly IReadOnlyDictionary<string, string> _modelPaths;
    private readonly WorkerOptions _options;
    private readonly BlobContainerClient _inputs;
    private readonly ILogger<PipelineRenderEngine> _logger;
    private readonly ConcurrentDictionary<(string Model, QuantizationMode Quantization), Lazy<Task<LoadedPipeline>>> _pipelines = new();

    public PipelineRenderEngine(Func<PipelineLoadOptions, IRenderPipeline> factory, IConfiguration configuration, IOptions<WorkerOptions> options,
        IOptions<BlobOptions> blobs, BlobServiceClient blobService, ILogger<PipelineRenderEngine> logger)
    {
        _factory = factory;
        _modelPaths = ModelPaths(configuration);
        _options = options.Value;
        _inputs = blobService.GetBlobContainerClient(blobs.Value.ManifestsContainer);
        _logger = logger;
    }

    /// <summary>The configured models: <c>Models:{name}:Path</c>.</summary>
    public static IReadOnlyDictionary<string, string> ModelPaths(IConfiguration configuration) =>
        configuration.GetSection(ConfigSections.Models).GetChildren()
            .Select(m => (m.Key, Path: m.GetSection(nameof(ModelEntryOptions.Path)).Value))
            .Where(m => !string.IsNullOrWhiteSpace(m.Path))
            .ToDictionary(m => m.Key, m => m.Path!, StringComparer.Ordinal);

    public async Task PreloadAsync(string model, string quantization, CancellationToken cancellationToken = default)
    {
        if (!_modelPaths.ContainsKey(model))
            throw new InvalidOperationException($"Worker:Preload names model '{model}', which has no Models:{model}:Path configured.");
        await GetPipelineAsync(model, WireNames.ParseQuantization(quantization), cancellationToken);
    }

    public async Task<IReadOnlyList<TaskRenderOutcome>> RenderAsync(IReadOnlyList<RenderTaskMessage> group, CancellationToken cancellationToken = default)
    {
        var key = RenderGroupKey.For(group[0]);
        if (group.Any(t => RenderGroupKey.For(t) != key))
            throw new ArgumentException("Tasks rendered together must share model, kind, size, steps, sampler and quantization.", nameof(group));
        if (!_modelPaths.ContainsKey(key.Model))
        {
            var known = _modelPaths.Count == 0 ? "none" : string.Join(", ", _modelPaths.Keys.Order(StringComparer.Ordinal));
            return group.Select(_ => TaskRenderOutcome.Failed(DeadLetterReasons.UnknownModel,
                $"this worker serves no model '{key.Model}' (configured: {known})")).ToList();
        }

        // Inputs first: a missing inpaint image fails its own task, the rest of the group still renders.
        var outcomes = new TaskRenderOutcome?[group.Count];
        var requests = new List<(int Index, RenderRequest Request)>();
        for (var i = 0; i < group.Count; i++)
        {
            var (request, failure) = await ToRequestAsync(group[i], cancellationToken);
            if (failure is not null) outcomes[i] = failure;
            else requests.Add((i, request!));
        }
        if (requests.Count > 0)
        {
            var loaded = await GetPipelineAsync(key.Model, WireNames.ParseQuantization(key.Quantization), cancellationToken);
            var results = await loaded.RenderAsync(requests.Select(r => r.Request).ToList(), cancellationToken);
            for (var i = 0; i < requests.Count; i++)
            {
                var r = results.Results[i];
                outcomes[requests[i].Index] = TaskRenderOutcome.Rendered(new RenderedOutput
                {
                    Png = r.Png,
                    FramePngs = r.FramePngs,
                    PreviewGif = r.PreviewGif,
                    ModelHash = loaded.Pipeline.Info.ModelHash,
                    TimingsMs = new Dictionary<string, double>
                    {
                        ["encode"] = r.EncodeTime.TotalMilliseconds,
                        ["denoise"] = r.DenoiseTime.TotalMilliseconds,
                        ["decode"] = r.DecodeTime.TotalMilliseconds,
                        ["batchRender"] = results.Elapsed.TotalMilliseconds,
                        ["batchSize"] = requests.Count,
                    },
                });
            }
        }
        return outcomes.Select(o => o!).ToList();
    }

    private async Task<(RenderRequest? Request, TaskRenderOutcome? Failure)> ToRequestAsync(RenderTaskMessage task, CancellationToken cancellationToken)
    {
        var p = task.Params;
        InpaintRequest? inpaint = null;
        if (p.Inpaint is { } input)
        {
            var image = await DownloadInputAsync(input.ImageBlob, cancellationToken);
            var mask = await DownloadInputAsync(input.MaskBlob, cancellationToken);
            if (image is null || mask is null)
                return (null, TaskRenderOutcome.Failed(DeadLetterReasons.InvalidParameters,
                    $"inpaint input '{(image is null ? input.ImageBlob : input.MaskBlob)}' is not in the '{_inputs.Name}' container"));
            inpaint = new InpaintRequest(image, mask, input.Strength);
        }
        return (ToRequest(task, inpaint), null);
    }

    /// <summary>A task's resolved parameters as a pipeline request (inpaint inputs already fetched by the caller).</summary>
    public static RenderRequest ToRequest(RenderTaskMessage task, InpaintRequest? inpaint)
    {
        var p = task.Params;
        return new RenderRequest
        {
            Prompt = p.Prompt, NegativePrompt = p.NegativePrompt, Seed = p.Seed, Width = p.Width, Height = p.Height, Steps = p.Steps,
            GuidanceScale = p.GuidanceScale, Sampler = WireNames.ParseSampler(p.Sampler),
            Video = p.Video is { } v ? new VideoRequest(v.Frames, v.Fps, v.MotionScale) : null,
            Inpaint = inpaint,
        };
    }

    private async Task<byte[]?> DownloadInputAsync(string blobName, CancellationToken cancellationToken)
    {
        try
        {
            return (await _inputs.GetBlobClient(blobName).DownloadContentAsync(cancellationToken)).Value.Content.ToArray();
        }
        catch (RequestFailedException e) when (e.Status == 404)
        {
            return null;
        }
    }

    private Task<LoadedPipeline> GetPipelineAsync(string model, QuantizationMode quantization, CancellationToken cancellationToken) =>
        _pipelines.GetOrAdd((model, quantization), k => new Lazy<Task<LoadedPipeline>>(() => Task.Run(() =>
        {
            var options = new PipelineLoadOptions
            {
                ModelDirectory = _modelPaths[k.Model],
                Device = _options.Device,
                Quantization = k.Quantization,
                Threads = _options.Threads,
            };
            _logger.LogInformation("Loading model {Model} ({Quantization}) from {Directory} on {Device}",
                k.Model, k.Quantization.ToWire(), options.ModelDirectory, options.Device);
            var started = Stopwatch.GetTimestamp();
            var pipeline = _factory(options);
            _logger.LogInformation("Loaded model {Model} ({Quantization}) in {Seconds:F1} s: hash {Hash}, device {Device}",
                k.Model, k.Quantization.ToWire(), Stopwatch.GetElapsedTime(started).TotalSeconds, pipeline.Info.ModelHash, pipeline.Info.Device);
            return new LoadedPipeline(pipeline);
        }))).Value.WaitAsync(cancellationToken);

    public void Dispose()
    {
        foreach (var entry in _pipelines.Values.Where(l => l.IsValueCreated && l.Value.IsCompletedSuccessfully))
            entry.Value.Result.Pipeline.Dispose();
    }

    /// <summary>A loaded pipeline; one render at a time (the model's buffers are not shared between threads).</summary>
    private sealed class LoadedPipeline(IRenderPipeline pipeline)
    {
        private readonly SemaphoreSlim _gate = new(1, 1);

        public IRenderPipeline Pipeline { get; } = pipeline;

        public async Task<(IReadOnlyList<RenderResult> Results, TimeSpan Elapsed)> RenderAsync(IReadOnlyList<RenderRequest> batch,
            CancellationToken cancellationToken)
        {
            await _gate.WaitAsync(cancellationToken);
            try
            {
                var started = Stopwatch.GetTimestamp();
                // The model runs synchronously for seconds to minutes: off the thread pool's async workers.
                var results = await Task.Factory.StartNew(() => Pipeline.Render(batch, null, cancellationToken), cancellationToken,
                    TaskCreationOptions.LongRunning, TaskScheduler.Default);
                if (results.Count != batch.Count)
                    throw new InvalidOperationException($"The pipeline returned {results.Count} results for {batch.Count} requests.");
                return (results, Stopwatch.GetElapsedTime(started));
            }
            finally
            {
                _gate.Release();
            }
        }
    }
}
