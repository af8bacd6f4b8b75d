using BatchRender.Core.Manifests;
using BatchRender.Core.Schedules;
using Microsoft.Extensions.Configuration;
using Spectre.Console;

namespace BatchRender.Cli.Commands;

/// <summary><c>validate --schedule</c>: the schedule parser, then the inline manifest by the manifest validator.</summary>
internal static class ScheduleValidation
{
    public static async Task<int> RunAsync(FileInfo file, IConfiguration configuration, CancellationToken ct)
    {
        var rules = CliConfiguration.ManifestRules(configuration);
        ScheduleParseResult parsed;
        await using (var stream = file.OpenRead())
            parsed = await new ScheduleParser(rules).ParseAsync(stream, file.Name, ct);
        if (!parsed.IsValid)
        {
            Console.Error.WriteLine($"{file.Name}: {parsed.TotalProblems:N0} problem{(parsed.TotalProblems == 1 ? "" : "s")}");
            foreach (var problem in parsed.Problems) Console.Error.WriteLine($"  {problem}");
            if (parsed.Truncated) Console.Error.WriteLine($"  ... and {parsed.TotalProblems - parsed.Problems.Count:N0} more problems");
            return ExitCodes.InvalidInput;
        }

        var schedule = parsed.Schedule!;
        var next = schedule.Expression.GetNextOccurrence(DateTimeOffset.UtcNow, schedule.TimeZone);
        AnsiConsole.MarkupLineInterpolated($"[green]valid[/] schedule [bold]{schedule.Name}[/]: '{schedule.Cron}' in {schedule.TimeZone.Id}; next run {next:u} as job {(next is { } n ? schedule.JobIdFor(n) : "-")}");
        if (schedule.InlineManifest is { } range)
        {
            await using var stream = file.OpenRead();
            await using var manifest = ScheduleParser.OpenRange(stream, range);
            var result = await new ManifestValidator(rules).ValidateAsync(manifest, ManifestSource.ForLocalFile(file.FullName), ct);
            return ValidateCommand.Report($"{file.Name} (manifest)", result);
        }
        AnsiConsole.MarkupLineInterpolated($"manifest: blob manifests/{schedule.ManifestBlob} (validated when the schedule runs)");
        return ExitCodes.Success;
    }
}
