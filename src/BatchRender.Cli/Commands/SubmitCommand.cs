using System.CommandLine;
using Azure.Storage.Blobs;
using BatchRender.Core.Configuration;
using BatchRender.Core.Ingestion;
using BatchRender.Core.Manifests;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Options;
using Spectre.Console;

namespace BatchRender.Cli.Commands;

/// <summary>
/// <c>submit MANIFEST</c>: ingests a local manifest against the configured storage (Azurite by default, Azure when the
/// configuration points there) with the same IngestionService the trigger uses. Its inpaint inputs are uploaded first
/// to <c>manifests/uploads/{content hash}/</c>, where the workers look for them.
/// </summary>
public static class SubmitCommand
{
    public static Command Create()
    {
        var manifest = new Argument<FileInfo>("MANIFEST") { Description = "The manifest JSON file (inpaint inputs beside it)" };
        var command = new Command("submit", "Submit a manifest to the configured storage: validate, record the job, enqueue its render tasks") { manifest };
        command.SetAction((parse, ct) => CliRunner.RunAsync(parse, async configuration =>
        {
            var file = parse.GetValue(manifest)!;
            if (!file.Exists) throw new CliInputException($"{file.FullName}: file not found");
            using var host = await CliHost.StartCoreAsync(configuration, ct);
            var result = await SubmitAsync(host.Services, file, ct);
            if (!result.Accepted) return ValidateCommand.Report(file.Name, result.Validation);
            foreach (var warning in result.Validation.Warnings) AnsiConsole.MarkupLineInterpolated($"[yellow]warning[/] {warning}");
            if (result.AlreadyIngested)
                AnsiConsole.MarkupLineInterpolated($"job [bold]{result.JobId}[/] was already submitted with this manifest: nothing enqueued again");
            else
                AnsiConsole.MarkupLineInterpolated($"submitted job [bold]{result.JobId}[/]: {result.TasksEnqueued:N0} task(s) enqueued");
            AnsiConsole.MarkupLineInterpolated($"follow it with: batchrender status {result.JobId}");
            return ExitCodes.Success;
        }));
        return command;
    }

    /// <summary>Uploads the manifest's inpaint inputs, then ingests it. Invalid: errors.json written, nothing enqueued.</summary>
    public static async Task<IngestResult> SubmitAsync(IServiceProvider services, FileInfo file, CancellationToken ct)
    {
        var validator = services.GetRequiredService<ManifestValidator>();
        var inputs = LocalFolderManifestInputs.ForManifestFile(file.FullName);
        var source = new ManifestSource(file.FullName, inputs);
        ManifestValidationResult validation;
        await using (var stream = file.OpenRead())
            validation = await validator.ValidateAsync(stream, source, ct);

        var prefix = "";
        if (validation.IsValid)
        {
            prefix = $"uploads/{validation.ContentSha256[..16]}/";
            var manifests = services.GetRequiredService<BlobServiceClient>()
                .GetBlobContainerClient(services.GetRequiredService<IOptions<BlobOptions>>().Value.ManifestsContainer);
            await UploadInputsAsync(services.GetRequiredService<ManifestExpander>(), file, validation, inputs, manifests, prefix, ct);
        }
        await using var manifest = file.OpenRead();
        return await services.GetRequiredService<IngestionService>().IngestStreamAsync(manifest, file.FullName, inputs, prefix, cancellationToken: ct);
    }

    private static async Task UploadInputsAsync(ManifestExpander expander, FileInfo file, ManifestValidationResult validation,
        LocalFolderManifestInputs inputs, BlobContainerClient manifests, string prefix, CancellationToken ct)
    {
        var paths = new SortedSet<string>(StringComparer.Ordinal);
        await using (var stream = file.OpenRead())
            await foreach (var task in expander.ExpandAsync(stream, validation, "", ct))
                if (task.Params.Inpaint is { } inpaint)
                {
                    paths.Add(inpaint.ImageBlob);
                    paths.Add(inpaint.MaskBlob);
                }
        if (paths.Count == 0) return;
        await manifests.CreateIfNotExistsAsync(cancellationToken: ct);
        foreach (var path in paths)
        {
            if (!inputs.TryResolve(path, out var fullPath, out var refusal)) throw new CliInputException($"{path}: {refusal}");
            await using var input = File.OpenRead(fullPath);
            await manifests.GetBlobClient(prefix + path).UploadAsync(input, overwrite: true, ct);
        }
    }
}
