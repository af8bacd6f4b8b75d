using System.CommandLine;
using System.Text.Json;
using BatchRender.Core.Ingestion;
using BatchRender.Core.State;
using Microsoft.Extensions.DependencyInjection;
using Spectre.Console;

namespace BatchRender.Cli.Commands;

/// <summary><c>status JOBID [--json] [--items N]</c>: the job's state, counts per item state, and its items' outputs.</summary>
public static class StatusCommand
{
    private static readonly JsonSerializerOptions Json = new(JsonSerializerDefaults.Web)
    {
        WriteIndented = true,
        Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping,
    };

    public static Command Create()
    {
        var jobId = new Argument<string>("JOBID") { Description = "The job id (printed by submit)" };
        var json = new Option<bool>("--json") { Description = "Print one JSON object on stdout" };
        var items = new Option<int>("--items") { Description = "How many items to list with their outputs", DefaultValueFactory = _ => 50 };
        var command = new Command("status", "Show a job's state, item counts per state and outputs") { jobId, json, items };
        command.SetAction((parse, ct) => CliRunner.RunAsync(parse, async configuration =>
        {
            using var host = await CliHost.StartCoreAsync(configuration, ct);
            var ingestion = host.Services.GetRequiredService<IngestionService>();
            var id = parse.GetValue(jobId)!;
            var job = await ingestion.GetStatusAsync(id, ct) ?? throw new CliInputException($"job '{id}' not found");
            var listed = new List<ItemRecord>();
            var max = Math.Max(0, parse.GetValue(items));
            await foreach (var item in host.Services.GetRequiredService<JobStateStore>().GetItemsAsync(id, ct))
            {
                if (listed.Count == max) break;
                listed.Add(item);
            }
            if (parse.GetValue(json))
                Console.Out.WriteLine(JsonSerializer.Serialize(new { job, items = listed }, Json));
            else
                Print(job, listed);
            return ExitCodes.Success;
        }));
        return command;
    }

    internal static void Print(JobRecord job, IReadOnlyList<ItemRecord> items)
    {
        var c = job.Counts;
        AnsiConsole.MarkupLineInterpolated($"job [bold]{job.JobId}[/]: [bold]{job.Status}[/]{(job.CancelRequested ? " (cancel requested)" : "")} · {c.Finished:N0}/{c.Total:N0} finished · from {job.SourceManifest}");
        var counts = new Table().AddColumns("queued", "rendering", "done", "failed", "dead-lettered", "cancelled", "total");
        counts.AddRow($"{c.Queued:N0}", $"{c.Rendering:N0}", $"{c.Done:N0}", $"{c.Failed:N0}", $"{c.DeadLettered:N0}", $"{c.Cancelled:N0}", $"{c.Total:N0}");
        AnsiConsole.Write(counts);
        if (items.Count == 0) return;
        var table = new Table().AddColumns("item", "state", "attempts", "outputs / error");
        foreach (var item in items)
        {
            var detail = item.State == ItemStates.Done
                ? string.Join("\n", item.Outputs.Count <= 3 ? item.Outputs : [.. item.Outputs.Take(2), $"... {item.Outputs.Count} outputs"])
                : item.LastError ?? "";
            table.AddRow(Markup.Escape(item.ItemId), item.State, item.Attempts.ToString(), Markup.Escape(detail));
        }
        AnsiConsole.Write(table);
        if (items.Count < c.Total) AnsiConsole.MarkupLineInterpolated($"({items.Count:N0} of {c.Total:N0} items listed; --items N for more)");
    }
}
