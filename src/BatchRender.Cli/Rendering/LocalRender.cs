using System.Diagnostics;
using System.Text.Json;
using BatchRender.Core.Configuration;
using BatchRender.Core.Manifests;
using BatchRender.Core.Messages;
using BatchRender.Core.Reports;
using BatchRender.Core.State;
using BatchRender.Core.Storage;
using BatchRender.Model.Pipelines;
using BatchRender.Worker.Processing;
using BatchRender.Worker.Rendering;

namespace BatchRender.Cli.Rendering;

/// <summary>What <see cref="LocalRender"/> needs: the accepted manifest, its expansion, where to write, how to load models.</summary>
public sealed record LocalRenderPlan(
    FileInfo Manifest,
    ManifestValidationResult Validation,
    IReadOnlyList<RenderTaskMessage> Tasks,
    LocalFolderManifestInputs Inputs,
    DirectoryInfo Out,
    Func<string, string> ModelDirectory,
    string Device,
    int Threads,
    int BatchSize);

/// <summary>Progress of a local render, per item (in steps) as the pipeline reports it.</summary>
public interface ILocalRenderProgress
{
    void Started(RenderTaskMessage task);
    void Step(RenderTaskMessage task, int step, int totalSteps);
    void Finished(RenderTaskMessage task, string state, string? error);
}

/// <summary>
/// <c>batchrender render</c>: renders an expanded manifest with the TorchSharp pipeline on this machine, no Azure, into
/// <c>{out}/{jobId}/</c> with the worker's layout (<see cref="BlobLayout"/> names as relative paths, the worker's
/// <see cref="RenderSidecar"/>) and Core's report and gallery (<see cref="JobReport"/>, <see cref="GalleryPage"/>).
/// Compatible tasks (<see cref="RenderGroupKey"/>) are rendered together, up to the batch size per model pass.
/// </summary>
public sealed class LocalRender(LocalRenderPlan plan, Func<PipelineLoadOptions, IRenderPipeline> loadPipeline, ILocalRenderProgress progress)
{
    public const string WorkerIdPrefix = "local:";
    private static readonly JsonSerializerOptions ReportJson = new(JsonSerializerDefaults.Web)
    {
        WriteIndented = true,
        Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping,
    };

    private readonly Dictionary<(string Directory, QuantizationMode Quantization), IRenderPipeline> _pipelines = new();
    private readonly string _workerId = WorkerIdPrefix + Environment.MachineName;

    public async Task<JobReport> RunAsync(CancellationToken cancellationToken)
    {
        var jobId = plan.Validation.JobId;
        var created = DateTimeOffset.UtcNow;
        await WriteAsync(BlobLayout.Manifest(jobId), await File.ReadAllBytesAsync(plan.Manifest.FullName, cancellationToken), cancellationToken);

        var items = new Dictionary<string, JobReportItem>(StringComparer.Ordinal);
        try
        {
            foreach (var group in plan.Tasks.GroupBy(RenderGroupKey.For))
                foreach (var batch in group.Chunk(Math.Max(1, plan.BatchSize)))
                    foreach (var item in await RenderBatchAsync(batch, cancellationToken))
                        items[item.ItemId] = item;
        }
        finally
        {
            foreach (var pipeline in _pipelines.Values) pipeline.Dispose();
        }

        var ordered = plan.Tasks.Select(t => items[t.ItemId]).ToList();
        var done = ordered.Count(i => i.State == ItemStates.Done);
        var failed = ordered.Count - done;
        var counts = new ItemCounts(ordered.Count, 0, 0, done, failed, 0, 0);
        var report = new JobReport(jobId, failed == 0 ? JobStatuses.Done : JobStatuses.Failed, plan.Manifest.FullName, created,
            ordered.Min(i => i.StartedAt), DateTimeOffset.UtcNow, counts,
            plan.Validation.Warnings.Select(w => w.ToString()).ToList(), ordered);
        await WriteAsync(BlobLayout.Report(jobId), JsonSerializer.SerializeToUtf8Bytes(report, ReportJson), cancellationToken);
        await WriteAsync(BlobLayout.Gallery(jobId), System.Text.Encoding.UTF8.GetBytes(GalleryPage.Render(report)), cancellationToken);
        return report;
    }

    /// <summary>The folder of the job's outputs.</summary>
    public string JobFolder => Path.Combine(plan.Out.FullName, plan.Validation.JobId);

    private async Task<IReadOnlyList<JobReportItem>> RenderBatchAsync(RenderTaskMessage[] batch, CancellationToken cancellationToken)
    {
        var started = DateTimeOffset.UtcNow;
        foreach (var task in batch) progress.Started(task);
        try
        {
            var key = RenderGroupKey.For(batch[0]);
            var pipeline = Pipeline(key.Model, WireNames.ParseQuantization(key.Quantization));
            var requests = new List<RenderRequest>(batch.Length);
            foreach (var task in batch) requests.Add(await ToRequestAsync(task, cancellationToken));

            var clock = Stopwatch.StartNew();
            var reporter = new StepReporter(batch, progress);
            var results = await Task.Factory.StartNew(() => pipeline.Render(requests, reporter, cancellationToken), cancellationToken,
                TaskCreationOptions.LongRunning, TaskScheduler.Default);
            var batchMs = clock.Elapsed.TotalMilliseconds;

            var items = new List<JobReportItem>(batch.Length);
            for (var i = 0; i < batch.Length; i++)
            {
                var output = new RenderedOutput
                {
                    Png = results[i].Png, FramePngs = results[i].FramePngs, PreviewGif = results[i].PreviewGif,
                    ModelHash = pipeline.Info.ModelHash,
                    TimingsMs = new Dictionary<string, double>
                    {
                        ["encode"] = results[i].EncodeTime.TotalMilliseconds,
                        ["denoise"] = results[i].DenoiseTime.TotalMilliseconds,
                        ["decode"] = results[i].DecodeTime.TotalMilliseconds,
                        ["batchRender"] = batchMs,
                        ["batchSize"] = batch.Length,
                    },
                };
                var outputs = await WriteOutputsAsync(batch[i], output, cancellationToken);
                items.Add(Item(batch[i], ItemStates.Done, null, outputs.Select(o => o.Blob).ToList(), started, output.TimingsMs));
                progress.Finished(batch[i], ItemStates.Done, null);
            }
            return items;
        }
        catch (Exception e) when (e is not OperationCanceledException)
        {
            // A failed model pass fails its items (recorded in the report and the gallery); the rest of the job renders.
            foreach (var task in batch) progress.Finished(task, ItemStates.Failed, e.Message);
            return batch.Select(t => Item(t, ItemStates.Failed, e.Message, [], started, new Dictionary<string, double>())).ToList();
        }
    }

    private JobReportItem Item(RenderTaskMessage task, string state, string? error, IReadOnlyList<string> outputs, DateTimeOffset started,
        IReadOnlyDictionary<string, double> timings)
    {
        var p = task.Params;
        var preview = state != ItemStates.Done ? null
            : task.Kind == RenderTaskKinds.Video && outputs.Contains(BlobLayout.Preview(task.JobId, task.ItemId)) ? BlobLayout.Preview(task.JobId, task.ItemId)
            : outputs.FirstOrDefault(o => o.EndsWith(".png", StringComparison.Ordinal));
        return new JobReportItem(task.ItemId, state, task.Kind, p.Prompt, p.Seed, p.Width, p.Height, 1, error, outputs, preview, _workerId,
            started, DateTimeOffset.UtcNow, timings);
    }

    /// <summary>The worker's layout: the PNG, or the frames and the preview; then the sidecar describing them.</summary>
    private async Task<IReadOnlyList<SidecarOutput>> WriteOutputsAsync(RenderTaskMessage task, RenderedOutput output, CancellationToken ct)
    {
        var outputs = new List<SidecarOutput>();
        if (output.FramePngs is { Count: > 0 } frames)
        {
            for (var i = 0; i < frames.Count; i++)
                outputs.Add(await WriteOutputAsync(BlobLayout.Frame(task.JobId, task.ItemId, i), frames[i], RenderOutputWriter.PngType, ct));
            if (output.PreviewGif is { } gif)
                outputs.Add(await WriteOutputAsync(BlobLayout.Preview(task.JobId, task.ItemId), gif, RenderOutputWriter.GifType, ct));
        }
        else
        {
            outputs.Add(await WriteOutputAsync(BlobLayout.Image(task.JobId, task.ItemId), output.Png, RenderOutputWriter.PngType, ct));
        }

        var sidecar = RenderSidecar.For(task, output, _workerId, deliveryCount: 1, outputs);
        await WriteAsync(BlobLayout.Sidecar(task.JobId, task.ItemId), sidecar.ToBinaryData().ToArray(), ct);
        return outputs;
    }

    private async Task<SidecarOutput> WriteOutputAsync(string name, byte[] bytes, string contentType, CancellationToken ct)
    {
        await WriteAsync(name, bytes, ct);
        return new SidecarOutput(name, contentType, bytes.LongLength, RenderOutputWriter.Sha256(bytes));
    }

    /// <summary>Writes a file under the output folder: to a temporary name first, then moved, so nothing is half-written.</summary>
    private async Task WriteAsync(string relativeName, byte[] bytes, CancellationToken ct)
    {
        var path = Path.Combine(plan.Out.FullName, relativeName.Replace('/', Path.DirectorySeparatorChar));
        Directory.CreateDirectory(Path.GetDirectoryName(path)!);
        var temp = path + ".tmp";
        await File.WriteAllBytesAsync(temp, bytes, ct);
        File.Move(temp, path, overwrite: true);
    }

    private async Task<RenderRequest> ToRequestAsync(RenderTaskMessage task, CancellationToken ct)
    {
        var p = task.Params;
        InpaintRequest? inpaint = null;
        if (p.Inpaint is { } input)
            inpaint = new InpaintRequest(await ReadInputAsync(input.ImageBlob, ct), await ReadInputAsync(input.MaskBlob, ct), input.Strength);
        return PipelineRenderEngine.ToRequest(task, inpaint);
    }

    private async Task<byte[]> ReadInputAsync(string relativePath, CancellationToken ct) =>
        plan.Inputs.TryResolve(relativePath, out var fullPath, out var refusal)
            ? await File.ReadAllBytesAsync(fullPath, ct)
            : throw new CliInputException($"inpaint input '{relativePath}' {refusal}");

    private IRenderPipeline Pipeline(string model, QuantizationMode quantization)
    {
        var directory = plan.ModelDirectory(model);
        if (!_pipelines.TryGetValue((directory, quantization), out var pipeline))
        {
            pipeline = loadPipeline(new PipelineLoadOptions { ModelDirectory = directory, Device = plan.Device, Quantization = quantization, Threads = plan.Threads });
            _pipelines[(directory, quantization)] = pipeline;
        }
        return pipeline;
    }

    /// <summary>Maps the pipeline's per-batch progress to the items of the batch (called on the render thread).</summary>
    private sealed class StepReporter(RenderTaskMessage[] batch, ILocalRenderProgress progress) : IProgress<RenderProgress>
    {
        public void Report(RenderProgress value)
        {
            if (value.ItemIndex >= 0 && value.ItemIndex < batch.Length)
                progress.Step(batch[value.ItemIndex], value.Step, value.TotalSteps);
            else
                foreach (var task in batch) progress.Step(task, value.Step, value.TotalSteps);
        }
    }
}
