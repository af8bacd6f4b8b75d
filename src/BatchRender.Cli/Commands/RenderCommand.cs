using System.CommandLine;
using BatchRender.Cli.Rendering;
using BatchRender.Core.Configuration;
using BatchRender.Core.Manifests;
using BatchRender.Core.Messages;
using BatchRender.Core.State;
using BatchRender.Model.Pipelines;
using Microsoft.Extensions.Configuration;
using Spectre.Console;

namespace BatchRender.Cli.Commands;

/// <summary>
/// <c>render MANIFEST --out DIR [--model M] [--quant Q]</c>: validates with the manifest's own folder for inputs (exit 2
/// on problems, with <c>_job/errors.json</c> written as ingest writes it), then renders every item locally with the
/// TorchSharp pipeline into <c>DIR/{jobId}/</c>, a progress bar per item.
/// </summary>
public static class RenderCommand
{
    public static Command Create()
    {
        var manifest = new Argument<FileInfo>("MANIFEST") { Description = "The manifest JSON file (inpaint inputs beside it)" };
        var output = new Option<DirectoryInfo>("--out") { Description = "Output folder (the job's files go to DIR/{jobId}/)", Required = true };
        var model = new Option<string?>("--model") { Description = "Render every item with this model: a name under Models: or a model directory" };
        var quant = new Option<string?>("--quant") { Description = "Override the quantization: none, bf16 or int8-dynamic" };
        quant.AcceptOnlyFromAmong("none", "bf16", "int8-dynamic");
        var command = new Command("render", "Render a manifest locally with the TorchSharp model, no Azure; same output layout as the workers")
            { manifest, output, model, quant };
        command.SetAction((parse, ct) => CliRunner.RunAsync(parse, configuration => RunAsync(
            parse.GetValue(manifest)!, parse.GetValue(output)!, parse.GetValue(model), parse.GetValue(quant), configuration, ct)));
        return command;
    }

    public static async Task<int> RunAsync(FileInfo file, DirectoryInfo output, string? modelOverride, string? quantOverride,
        IConfiguration configuration, CancellationToken ct)
    {
        if (!file.Exists) throw new CliInputException($"{file.FullName}: file not found");
        var rules = CliConfiguration.ManifestRules(configuration);
        var inputs = LocalFolderManifestInputs.ForManifestFile(file.FullName);
        var source = new ManifestSource(file.FullName, inputs);
        ManifestValidationResult validation;
        await using (var stream = file.OpenRead())
            validation = await new ManifestValidator(rules).ValidateAsync(stream, source, ct);
        if (!validation.IsValid)
        {
            var errors = Path.Combine(output.FullName, Core.Storage.BlobLayout.Errors(validation.JobId));
            Directory.CreateDirectory(Path.GetDirectoryName(errors)!);
            await File.WriteAllBytesAsync(errors, System.Text.Json.JsonSerializer.SerializeToUtf8Bytes(ManifestErrorsDocument.From(validation),
                new System.Text.Json.JsonSerializerOptions(System.Text.Json.JsonSerializerDefaults.Web) { WriteIndented = true }), ct);
            return ValidateCommand.Report(file.Name, validation);
        }

        // Resolve the model override once: a configured name or a directory.
        Func<string, string> modelDirectory = name => CliConfiguration.ModelDirectory(configuration, name);
        string? overrideName = null;
        if (modelOverride is not null)
        {
            if (Directory.Exists(modelOverride))
            {
                var directory = Path.GetFullPath(modelOverride);
                overrideName = Path.GetFileName(directory.TrimEnd(Path.DirectorySeparatorChar));
                modelDirectory = _ => directory;
            }
            else if (CliConfiguration.ModelNames(configuration).Contains(modelOverride)) overrideName = modelOverride;
            else throw new CliInputException($"--model '{modelOverride}' is neither a model directory nor a configured model ({string.Join(", ", CliConfiguration.ModelNames(configuration))})");
        }

        var tasks = new List<RenderTaskMessage>(validation.ItemCount);
        await using (var stream = file.OpenRead())
            await foreach (var task in new ManifestExpander(rules).ExpandAsync(stream, validation, "", ct))
                tasks.Add(task with
                {
                    Model = overrideName ?? task.Model,
                    Params = quantOverride is null ? task.Params : task.Params with { Quantization = quantOverride },
                });
        foreach (var name in tasks.Select(t => t.Model).Distinct())
        {
            var directory = modelDirectory(name);
            if (!File.Exists(Path.Combine(directory, "model_index.json")))
                throw new CliInputException(name == "demo" && modelOverride is null
                    ? $"the demo model is not at {directory}: train it first with `batchrender train` (or pass --model DIR)"
                    : $"model '{name}': {directory} is not a model directory (no model_index.json)");
        }

        var worker = configuration.GetSection(ConfigSections.Worker).Get<WorkerOptions>() ?? new WorkerOptions();
        var plan = new LocalRenderPlan(file, validation, tasks, inputs, output, modelDirectory, worker.Device, worker.Threads, worker.BatchSize);
        foreach (var warning in validation.Warnings) AnsiConsole.MarkupLineInterpolated($"[yellow]warning[/] {warning}");
        AnsiConsole.MarkupLineInterpolated($"rendering job [bold]{validation.JobId}[/]: {tasks.Count:N0} items into {Path.Combine(output.FullName, validation.JobId)}");

        var started = DateTimeOffset.UtcNow;
        Core.Reports.JobReport report = null!;
        await AnsiConsole.Progress()
            .AutoClear(false)
            .Columns(new TaskDescriptionColumn(), new ProgressBarColumn(), new PercentageColumn(), new ElapsedTimeColumn())
            .StartAsync(async context =>
            {
                var bars = tasks.ToDictionary(t => t.ItemId, t => context.AddTask(Markup.Escape(t.ItemId), autoStart: false, maxValue: t.Params.Steps));
                report = await new LocalRender(plan, options => HunyuanDiTPipeline.Load(options), new SpectreProgress(bars)).RunAsync(ct);
            });

        var gallery = Path.Combine(output.FullName, Core.Storage.BlobLayout.Gallery(validation.JobId));
        var c = report.Counts;
        AnsiConsole.Markup(c.Failed == 0 ? "[green]done[/]" : "[red]finished with failures[/]");
        AnsiConsole.MarkupLineInterpolated($": {c.Done:N0} of {c.Total:N0} rendered in {(DateTimeOffset.UtcNow - started).TotalSeconds:0.0} s");
        foreach (var failed in report.Items.Where(i => i.State != ItemStates.Done))
            Console.Error.WriteLine($"  {failed.ItemId}: {failed.Error}");
        AnsiConsole.MarkupLineInterpolated($"gallery: {gallery}");
        return c.Failed == 0 ? ExitCodes.Success : ExitCodes.Failure;
    }

    private sealed class SpectreProgress(IReadOnlyDictionary<string, ProgressTask> bars) : ILocalRenderProgress
    {
        public void Started(RenderTaskMessage task) => bars[task.ItemId].StartTask();

        public void Step(RenderTaskMessage task, int step, int totalSteps)
        {
            var bar = bars[task.ItemId];
            bar.MaxValue = totalSteps;
            bar.Value = step;
        }

        public void Finished(RenderTaskMessage task, string state, string? error)
        {
            var bar = bars[task.ItemId];
            if (state == ItemStates.Done) bar.Value = bar.MaxValue;
            else bar.Description = $"{Markup.Escape(task.ItemId)} [red]{state}[/]";
            bar.StopTask();
        }
    }
}
