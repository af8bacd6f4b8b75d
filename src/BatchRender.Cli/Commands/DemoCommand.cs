using System.CommandLine;
using System.Diagnostics;
using Azure.Storage.Blobs;
using BatchRender.Cli.Ingestion;
using BatchRender.Core.Configuration;
using BatchRender.Core.Ingestion;
using BatchRender.Core.Local;
using BatchRender.Core.Manifests;
using BatchRender.Core.State;
using BatchRender.Core.Storage;
using BatchRender.Model.Pipelines;
using BatchRender.Worker;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Options;
using Spectre.Console;

namespace BatchRender.Cli.Commands;

/// <summary>
/// <c>demo [--out DIR]</c>: the whole product on this machine. Starts Azurite if none is running, runs the ingest loop
/// and a worker in one generic host, drops samples/demo-manifest.json and its inpaint inputs into the <c>manifests</c>
/// container (as a user would), shows progress per state while the job runs, then downloads <c>renders/{jobId}/</c> to
/// DIR/{jobId}/ and prints where the gallery is.
/// </summary>
public static class DemoCommand
{
    public static Command Create()
    {
        var output = new Option<DirectoryInfo>("--out") { Description = "Where the renders are downloaded", DefaultValueFactory = _ => new DirectoryInfo("demo-out") };
        var manifestOption = new Option<FileInfo?>("--manifest") { Description = "Another manifest to run (default: samples/demo-manifest.json)" };
        var command = new Command("demo", "Run the pipeline end to end locally on Azurite with the demo model and download the renders") { output, manifestOption };
        command.SetAction((parse, ct) => CliRunner.RunAsync(parse, configuration =>
            RunAsync(parse.GetValue(manifestOption), parse.GetValue(output)!, configuration, ct)));
        return command;
    }

    public static async Task<int> RunAsync(FileInfo? manifestFile, DirectoryInfo output, IConfiguration configuration, CancellationToken ct)
    {
        var clock = Stopwatch.StartNew();
        var root = AzuriteLauncher.FindRepositoryRoot();
        var manifest = manifestFile ?? (root is null ? null : new FileInfo(Path.Combine(root, "samples", "demo-manifest.json")));
        if (manifest is not { Exists: true })
            throw new CliInputException($"the demo manifest was not found ({manifest?.FullName ?? "no repository root with package.json above the working directory"})");
        var demoModel = CliConfiguration.ModelDirectory(configuration, "demo");
        if (!File.Exists(Path.Combine(demoModel, "model_index.json")))
            throw new CliInputException($"the demo model is not at {demoModel}: train it first with `batchrender train`");

        // The manifest is checked here first, so a broken one says so at once instead of after the host started.
        var rules = CliConfiguration.ManifestRules(configuration);
        ManifestValidationResult validation;
        await using (var stream = manifest.OpenRead())
            validation = await new ManifestValidator(rules).ValidateAsync(stream, ManifestSource.ForLocalFile(manifest.FullName), ct);
        if (!validation.IsValid) return ValidateCommand.Report(manifest.Name, validation);

        AnsiConsole.MarkupLine("starting Azurite (installing it with npm the first time) ...");
        await using var azurite = await AzuriteLauncher.StartAsync(new AzuriteOptions { InMemory = true }, cancellationToken: ct);
        var settings = new ConfigurationBuilder().AddConfiguration(configuration).AddInMemoryCollection(new Dictionary<string, string?>
        {
            ["Storage:ConnectionString"] = azurite.ConnectionString,
            ["Transport:Kind"] = nameof(TransportKind.StorageQueue),
            [$"Models:demo:Path"] = demoModel,
            [$"{IngestCommand.Section}:{nameof(LocalIngestOptions.ManifestPollInterval)}"] = "00:00:01",
        }).Build();

        var builder = CliHost.CreateBuilder(settings, addCore: false); // AddBatchRenderWorker adds Core
        IngestCommand.AddLocalIngest(builder.Services, settings);
        builder.Services.AddBatchRenderWorker(settings).AddRenderPipeline(options => HunyuanDiTPipeline.Load(options));
        using var host = builder.Build();
        var ingest = host.Services.GetRequiredService<LocalIngestService>();
        var folder = $"demo/{DateTime.UtcNow:yyyyMMddTHHmmssfff}/";
        var blobName = folder + manifest.Name;
        var ingested = new TaskCompletionSource<IngestResult>(TaskCreationOptions.RunContinuationsAsynchronously);
        ingest.Ingested += result => { if (result.Validation.Source == blobName) ingested.TrySetResult(result); };
        await host.StartAsync(ct);
        try
        {
            var blobs = host.Services.GetRequiredService<BlobServiceClient>();
            var names = host.Services.GetRequiredService<IOptions<BlobOptions>>().Value;
            await UploadAsync(blobs.GetBlobContainerClient(names.ManifestsContainer), manifest, folder, validation, rules, ct);
            AnsiConsole.MarkupLineInterpolated($"submitted manifests/{blobName}: {validation.ItemCount} items");

            var accepted = await ingested.Task.WaitAsync(TimeSpan.FromMinutes(2), ct);
            if (!accepted.Accepted) return ValidateCommand.Report(blobName, accepted.Validation);
            var job = await WaitAsync(host.Services.GetRequiredService<IngestionService>(), blobs.GetBlobContainerClient(names.RendersContainer), accepted.JobId, ct);

            var target = new DirectoryInfo(Path.Combine(output.FullName, job.JobId));
            var files = await DownloadAsync(blobs.GetBlobContainerClient(names.RendersContainer), job.JobId, target, ct);
            var c = job.Counts;
            AnsiConsole.Markup(c.Done == c.Total ? "[green]done[/]" : $"[red]{Markup.Escape(job.Status)}[/]");
            AnsiConsole.MarkupLineInterpolated($": {c.Done} of {c.Total} items rendered ({c.Failed + c.DeadLettered} failed) in {clock.Elapsed.TotalSeconds:0} s; {files} files in {target.FullName}");
            AnsiConsole.MarkupLineInterpolated($"gallery: [bold]{Path.Combine(target.FullName, "_job", "index.html")}[/]");
            return c.Done == c.Total ? ExitCodes.Success : ExitCodes.Failure;
        }
        finally
        {
            using var stop = new CancellationTokenSource(TimeSpan.FromSeconds(60));
            await host.StopAsync(stop.Token);
        }
    }

    /// <summary>The manifest and its inpaint inputs, under one folder of the <c>manifests</c> container; the manifest last,
    /// so the ingest loop never sees it before its inputs.</summary>
    private static async Task UploadAsync(BlobContainerClient manifests, FileInfo manifest, string folder, ManifestValidationResult validation,
        ManifestRules rules, CancellationToken ct)
    {
        await manifests.CreateIfNotExistsAsync(cancellationToken: ct);
        var inputs = LocalFolderManifestInputs.ForManifestFile(manifest.FullName);
        var paths = new SortedSet<string>(StringComparer.Ordinal);
        await using (var stream = manifest.OpenRead())
            await foreach (var task in new ManifestExpander(rules).ExpandAsync(stream, validation, "", ct))
                if (task.Params.Inpaint is { } inpaint) { paths.Add(inpaint.ImageBlob); paths.Add(inpaint.MaskBlob); }
        foreach (var path in paths)
        {
            if (!inputs.TryResolve(path, out var fullPath, out var refusal)) throw new CliInputException($"{path}: {refusal}");
            await using var input = File.OpenRead(fullPath);
            await manifests.GetBlobClient(folder + path).UploadAsync(input, overwrite: true, ct);
        }
        await using var body = manifest.OpenRead();
        await manifests.GetBlobClient(folder + manifest.Name).UploadAsync(body, overwrite: true, ct);
    }

    /// <summary>Items finished / total with the counts per state, until the job has ended and its gallery is written.</summary>
    private static async Task<JobRecord> WaitAsync(IngestionService ingestion, BlobContainerClient renders, string jobId, CancellationToken ct)
    {
        JobRecord job = null!;
        await AnsiConsole.Progress().AutoClear(false)
            .Columns(new TaskDescriptionColumn(), new ProgressBarColumn(), new PercentageColumn(), new ElapsedTimeColumn())
            .StartAsync(async context =>
            {
                var bar = context.AddTask($"job {Markup.Escape(jobId)}");
                while (true)
                {
                    job = await ingestion.GetStatusAsync(jobId, ct) ?? throw new InvalidOperationException($"job '{jobId}' disappeared");
                    var c = job.Counts;
                    bar.MaxValue = Math.Max(1, c.Total);
                    bar.Value = c.Finished;
                    bar.Description = $"job {Markup.Escape(jobId)}: {c.Finished}/{c.Total} · queued {c.Queued} · rendering {c.Rendering} · done {c.Done}" +
                                      (c.Failed + c.DeadLettered > 0 ? $" · [red]failed {c.Failed + c.DeadLettered}[/]" : "");
                    if (JobStatuses.IsEnded(job.Status) && await renders.GetBlobClient(BlobLayout.Gallery(jobId)).ExistsAsync(ct)) break;
                    await Task.Delay(TimeSpan.FromSeconds(1), ct);
                }
            });
        return job;
    }

    /// <summary>Everything under <c>renders/{jobId}/</c>, keeping the layout (the gallery's links are relative).</summary>
    private static async Task<int> DownloadAsync(BlobContainerClient renders, string jobId, DirectoryInfo target, CancellationToken ct)
    {
        var count = 0;
        await foreach (var blob in renders.GetBlobsAsync(Azure.Storage.Blobs.Models.BlobTraits.None, Azure.Storage.Blobs.Models.BlobStates.None, BlobLayout.JobPrefix(jobId), ct))
        {
            var path = Path.Combine(target.FullName, blob.Name[BlobLayout.JobPrefix(jobId).Length..].Replace('/', Path.DirectorySeparatorChar));
            Directory.CreateDirectory(Path.GetDirectoryName(path)!);
            await renders.GetBlobClient(blob.Name).DownloadToAsync(path, ct);
            count++;
        }
        return count;
    }
}
