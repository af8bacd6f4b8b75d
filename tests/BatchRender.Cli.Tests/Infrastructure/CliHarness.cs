using System.Text.Json;
using BatchRender.Core.Tests.Infrastructure;
using Spectre.Console;

namespace BatchRender.Cli.Tests.Infrastructure;

/// <summary>The CLI tests share one Azurite and run one after another: each command's stdout/stderr is the process's console.</summary>
[CollectionDefinition(Name, DisableParallelization = true)]
public sealed class CliCollection : ICollectionFixture<AzuriteFixture>
{
    public const string Name = "cli";
}

public sealed record CliResult(int ExitCode, string Out, string Error)
{
    public override string ToString() => $"exit {ExitCode}\n--- stdout\n{Out}\n--- stderr\n{Error}";
}

/// <summary>Runs <c>batchrender</c> in-process (the real root command, parsed from args) and captures what it prints.</summary>
public static class CliHarness
{
    public static async Task<CliResult> RunAsync(params string[] args)
    {
        var stdout = new StringWriter();
        var stderr = new StringWriter();
        var (oldOut, oldError, oldAnsi) = (Console.Out, Console.Error, AnsiConsole.Console);
        Console.SetOut(stdout);
        Console.SetError(stderr);
        AnsiConsole.Console = AnsiConsole.Create(new AnsiConsoleSettings
        {
            Out = new AnsiConsoleOutput(stdout), Ansi = AnsiSupport.No, ColorSystem = ColorSystemSupport.NoColors,
            Interactive = InteractionSupport.No,
        });
        AnsiConsole.Profile.Width = 200;
        try
        {
            var code = await BatchRenderCommand.Create().Parse(args).InvokeAsync();
            return new CliResult(code, stdout.ToString(), stderr.ToString());
        }
        finally
        {
            Console.SetOut(oldOut);
            Console.SetError(oldError);
            AnsiConsole.Console = oldAnsi;
        }
    }

    /// <summary>
    /// A <c>--config</c> file pointing at the test Azurite with containers, queues and tables of its own, and the demo
    /// model name at <paramref name="demoModel"/>.
    /// </summary>
    public static string WriteConfig(string directory, AzuriteFixture azurite, string? demoModel = null)
    {
        var id = Guid.NewGuid().ToString("N")[..10];
        var settings = new Dictionary<string, object>
        {
            ["Storage"] = new Dictionary<string, string> { ["ConnectionString"] = azurite.ConnectionString },
            ["Transport"] = new Dictionary<string, string> { ["QueueName"] = $"tasks-{id}", ["PoisonQueueName"] = $"tasks-{id}-poison" },
            ["Blobs"] = new Dictionary<string, string>
            {
                ["ManifestsContainer"] = $"manifests-{id}", ["RendersContainer"] = $"renders-{id}", ["SchedulesContainer"] = $"schedules-{id}",
            },
            ["State"] = new Dictionary<string, string> { ["JobsTable"] = $"jobs{id}", ["ItemsTable"] = $"items{id}", ["SchedulesTable"] = $"schedules{id}" },
            ["Models"] = new Dictionary<string, object> { ["demo"] = new Dictionary<string, string> { ["Path"] = demoModel ?? "models/demo" } },
            ["Worker"] = new Dictionary<string, object> { ["BatchSize"] = 2, ["Threads"] = 2 },
        };
        var path = Path.Combine(directory, $"config-{id}.json");
        File.WriteAllText(path, JsonSerializer.Serialize(settings));
        return path;
    }

    public static string RendersContainer(string configPath) =>
        JsonDocument.Parse(File.ReadAllText(configPath)).RootElement.GetProperty("Blobs").GetProperty("RendersContainer").GetString()!;
}
