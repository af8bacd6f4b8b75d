using System.CommandLine;
using BatchRender.Core.Ingestion;
using Microsoft.Extensions.DependencyInjection;
using Spectre.Console;

namespace BatchRender.Cli.Commands;

/// <summary><c>cancel JOBID</c>: queued items are cancelled; workers complete the job's remaining tasks without rendering.</summary>
public static class CancelCommand
{
    public static Command Create()
    {
        var jobId = new Argument<string>("JOBID") { Description = "The job id" };
        var command = new Command("cancel", "Cancel a job: its queued items are not rendered") { jobId };
        command.SetAction((parse, ct) => CliRunner.RunAsync(parse, async configuration =>
        {
            using var host = await CliHost.StartCoreAsync(configuration, ct);
            var id = parse.GetValue(jobId)!;
            var job = await host.Services.GetRequiredService<IngestionService>().CancelJobAsync(id, ct)
                ?? throw new CliInputException($"job '{id}' not found");
            AnsiConsole.MarkupLineInterpolated($"job [bold]{job.JobId}[/]: {job.Status} ({job.Counts.Cancelled:N0} cancelled, {job.Counts.Done:N0} done of {job.Counts.Total:N0})");
            return ExitCodes.Success;
        }));
        return command;
    }
}
