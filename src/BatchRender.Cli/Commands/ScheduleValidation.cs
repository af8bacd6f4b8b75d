using BatchRender.Core.Manifests;
using BatchRender.Core.Schedules;
using Microsoft.Extensions.Configuration;
using Spectre.Console;

namespace BatchRender.Cli.Commands;

/// <summary><c>validate --schedule</c>: Core's <see cref="LocalScheduleCheck"/> (the schedule, then its inline manifest as
/// the next occurrence's job, problems under <c>manifest.</c>).</summary>
internal static class ScheduleValidation
{
    public static async Task<int> RunAsync(FileInfo file, IConfiguration configuration, CancellationToken ct)
    {
        var rules = CliConfiguration.ManifestRules(configuration);
        var now = DateTimeOffset.UtcNow;
        var check = await LocalScheduleCheck.CheckFileAsync(file.FullName, new ScheduleParser(rules), new ManifestValidator(rules), now, ct);
        foreach (var warning in check.Warnings) AnsiConsole.MarkupLineInterpolated($"[yellow]warning[/] {warning}");
        if (!check.IsValid)
        {
            Console.Error.WriteLine($"{file.Name}: {check.TotalProblems:N0} problem{(check.TotalProblems == 1 ? "" : "s")}");
            foreach (var problem in check.Problems) Console.Error.WriteLine($"  {problem}");
            if (check.TotalProblems > check.Problems.Count)
                Console.Error.WriteLine($"  ... and {check.TotalProblems - check.Problems.Count:N0} more problems");
            return ExitCodes.InvalidInput;
        }

        var schedule = check.Schedule.Schedule!;
        var next = schedule.Expression.GetNextOccurrence(now, schedule.TimeZone);
        AnsiConsole.MarkupLineInterpolated($"[green]valid[/] schedule [bold]{schedule.Name}[/]: '{schedule.Cron}' in {schedule.TimeZone.Id}; next run {next:u} as job {(next is { } n ? schedule.JobIdFor(n) : "-")}");
        if (check.Manifest is { } manifest)
            AnsiConsole.MarkupLineInterpolated($"manifest (inline): {manifest.ItemCount:N0} items, model {manifest.Model}");
        else
            AnsiConsole.MarkupLineInterpolated($"manifest: blob manifests/{schedule.ManifestBlob} (validated when the schedule runs)");
        return ExitCodes.Success;
    }
}
