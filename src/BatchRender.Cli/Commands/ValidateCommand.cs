using System.CommandLine;
using BatchRender.Core.Manifests;
using Spectre.Console;

namespace BatchRender.Cli.Commands;

/// <summary><c>validate MANIFEST</c>: the ingest validator, locally; prints every problem with its path, enqueues nothing.</summary>
public static class ValidateCommand
{
    public static Command Create()
    {
        var manifest = new Argument<FileInfo>("MANIFEST") { Description = "The manifest (or, with --schedule, schedule) JSON file" };
        var schedule = new Option<bool>("--schedule") { Description = "Validate a schedule definition (schedules/{name}.json) instead" };
        var command = new Command("validate", "Validate a manifest or schedule by the same code as ingest; enqueues nothing") { manifest, schedule };
        command.SetAction((parse, ct) => CliRunner.RunAsync(parse, async configuration =>
        {
            var file = parse.GetValue(manifest)!;
            if (!file.Exists) throw new CliInputException($"{file.FullName}: file not found");
            if (parse.GetValue(schedule))
                return await ScheduleValidation.RunAsync(file, configuration, ct);

            var validator = new ManifestValidator(CliConfiguration.ManifestRules(configuration));
            await using var stream = file.OpenRead();
            var result = await validator.ValidateAsync(stream, ManifestSource.ForLocalFile(file.FullName), ct);
            return Report(file.Name, result);
        }));
        return command;
    }

    /// <summary>Prints a validation result; returns the exit code (0 valid, 2 invalid).</summary>
    public static int Report(string name, ManifestValidationResult result)
    {
        foreach (var warning in result.Warnings)
            AnsiConsole.MarkupLineInterpolated($"[yellow]warning[/] {warning}");
        if (result.IsValid)
        {
            AnsiConsole.MarkupLineInterpolated($"[green]valid[/] {name}: job [bold]{result.JobId}[/]{(result.JobIdDerived ? " (derived)" : "")}, {result.ItemCount:N0} items, model {result.Model}");
            return ExitCodes.Success;
        }
        Console.Error.WriteLine($"{name}: {result.TotalProblems:N0} problem{(result.TotalProblems == 1 ? "" : "s")}");
        foreach (var line in result.Describe()) Console.Error.WriteLine($"  {line}");
        return ExitCodes.InvalidInput;
    }
}
