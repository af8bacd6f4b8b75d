using System.CommandLine;
using System.Globalization;
using System.Text.Json;
using System.Text.Json.Serialization;
using BatchRender.Cli.Benchmarks;
using BatchRender.Core.Local;
using BatchRender.Model.Autoencoders;
using BatchRender.Model.Benchmarks;
using BatchRender.Model.Loading;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Spectre.Console;

namespace BatchRender.Cli.Commands;

/// <summary>
/// <c>bench [--model] [--pipeline] [--json]</c>: the model benchmark (Model's <see cref="ModelBenchmark"/> for the demo
/// config and the v1.2-width config, side by side) and the pipeline benchmark (<see cref="PipelineBenchmark"/>). Neither
/// flag runs both. <c>--json</c> prints one object in the DESIGN.md shape on stdout; logs go to stderr.
/// </summary>
public static class BenchCommand
{
    private static readonly JsonSerializerOptions Json = new(JsonSerializerDefaults.Web)
    {
        WriteIndented = true,
        DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull,
        Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping,
    };

    public static Command Create()
    {
        var model = new Option<bool>("--model") { Description = "Transformer benchmark: fp32, bf16, int8-dynamic and the PyTorch anchor, demo and v1.2-width configs" };
        var pipeline = new Option<bool>("--pipeline") { Description = "Ingest rate and memory on Azurite, and pipeline overhead per item as a share of render time" };
        var json = new Option<bool>("--json") { Description = "Print one JSON object on stdout (logs on stderr)" };
        var items = new Option<int>("--items") { Description = "Largest manifest ingested (also runs a tenth and a half of it)", DefaultValueFactory = _ => 100_000 };
        var repeats = new Option<int>("--repeats") { Description = "Timed forwards per variant (model benchmark)", DefaultValueFactory = _ => 3 };
        var renderModel = new Option<DirectoryInfo?>("--render-model") { Description = "Model directory rendered for the overhead (default: the configured demo model)" };
        var overheadItems = new Option<int>("--overhead-items") { Description = "Items of the job the worker's overhead is timed over", DefaultValueFactory = _ => new PipelineBenchmarkOptions().OverheadItems };
        var command = new Command("bench", "Model and pipeline benchmarks, ratios measured side by side in one run")
            { model, pipeline, json, items, repeats, renderModel, overheadItems };
        command.SetAction((parse, ct) => CliRunner.RunAsync(parse, async configuration =>
        {
            var runModel = parse.GetValue(model);
            var runPipeline = parse.GetValue(pipeline);
            if (!runModel && !runPipeline) runModel = runPipeline = true;
            var maxItems = parse.GetValue(items);
            if (maxItems < 10) throw new CliInputException("--items must be at least 10");
            if (parse.GetValue(overheadItems) < 1) throw new CliInputException("--overhead-items must be at least 1");
            using var loggers = LoggerFactory.Create(b => b.AddSimpleConsole(o => o.SingleLine = true).SetMinimumLevel(LogLevel.Information)
                .AddFilter("Azure", LogLevel.Warning).AddFilter("Microsoft", LogLevel.Warning)
                .Services.Configure<Microsoft.Extensions.Logging.Console.ConsoleLoggerOptions>(o => o.LogToStandardErrorThreshold = LogLevel.Trace));

            List<ModelBenchmarkResult>? models = null;
            if (runModel) models = RunModelBenchmarks(parse.GetValue(repeats), configuration, ct);
            PipelineBenchmarkResult? pipelineResult = null;
            if (runPipeline)
            {
                var (directory, label) = OverheadModel(parse.GetValue(renderModel), configuration);
                var worker = configuration.GetSection(Core.Configuration.ConfigSections.Worker).Get<Core.Configuration.WorkerOptions>() ?? new();
                pipelineResult = await new PipelineBenchmark(configuration, loggers).RunAsync(new PipelineBenchmarkOptions
                {
                    IngestSizes = [.. new[] { maxItems / 10, maxItems / 2, maxItems }.Distinct()],
                    ModelDirectory = directory, ModelLabel = label, Threads = worker.Threads, OverheadItems = parse.GetValue(overheadItems),
                }, ct);
            }

            if (parse.GetValue(json))
                Console.Out.WriteLine(JsonSerializer.Serialize(new BenchReport(models, pipelineResult), Json));
            else
                Print(models, pipelineResult);
            return ExitCodes.Success;
        }));
        return command;
    }

    public sealed record BenchReport(
        [property: JsonPropertyName("models")] IReadOnlyList<ModelBenchmarkResult>? Models,
        [property: JsonPropertyName("pipeline")] PipelineBenchmarkResult? Pipeline);

    private static (string? Directory, string Label) OverheadModel(DirectoryInfo? explicitModel, IConfiguration configuration)
    {
        if (explicitModel is not null)
            return explicitModel.Exists && File.Exists(Path.Combine(explicitModel.FullName, "model_index.json"))
                ? (explicitModel.FullName, $"{explicitModel.Name} (--render-model, not the demo model)")
                : throw new CliInputException($"--render-model {explicitModel.FullName}: not a model directory (no model_index.json)");
        var demo = CliConfiguration.ModelDirectory(configuration, "demo");
        return File.Exists(Path.Combine(demo, "model_index.json")) ? (demo, "demo") : (null, "demo");
    }

    private static List<ModelBenchmarkResult> RunModelBenchmarks(int repeats, IConfiguration configuration, CancellationToken ct)
    {
        var root = AzuriteLauncher.FindRepositoryRoot();
        var anchor = root is null ? null : Path.Combine(root, "bench", "hunyuan_dit_reference.py");
        if (anchor is not null && !File.Exists(anchor)) anchor = null;
        var worker = configuration.GetSection(Core.Configuration.ConfigSections.Worker).Get<Core.Configuration.WorkerOptions>() ?? new();
        var threads = worker.Threads > 0 ? worker.Threads : Math.Min(Environment.ProcessorCount, 2);
        void Log(string line) => Console.Error.WriteLine(line);
        // The demo config: the shipped model's own transformer and a full render with it; a stand-in of its size
        // (random weights, forward only) where the model is missing.
        var demo = CliConfiguration.ModelDirectory(configuration, "demo");
        var demoOptions = File.Exists(Path.Combine(demo, "transformer", "config.json"))
            ? new ModelBenchmarkOptions
            {
                ConfigName = "demo", WeightsDirectory = Path.Combine(demo, "transformer"),
                VaeScaleFactor = AutoencoderKLConfig.Load(Path.Combine(demo, "vae", DiffusersComponent.ConfigFileName)).ScaleFactor,
                FullRender = new PipelineFullRender(demo, PipelineFullRender.DemoRequest, "cpu", threads),
            }
            : new ModelBenchmarkOptions { ConfigName = "demo", Config = ModelBenchmarkConfigs.DemoSize };
        return
        [
            ModelBenchmark.Run(demoOptions with { Width = 128, Height = 128, Repeats = repeats, Threads = threads, AnchorScript = anchor }, Log, ct),
            ModelBenchmark.Run(new ModelBenchmarkOptions
            {
                ConfigName = "v1.2-width", Config = ModelBenchmarkConfigs.V12Width(), Width = 256, Height = 256, Repeats = repeats, Threads = threads, AnchorScript = anchor,
            }, Log, ct),
        ];
    }

    private static void Print(IReadOnlyList<ModelBenchmarkResult>? models, PipelineBenchmarkResult? pipeline)
    {
        if (models is { Count: > 0 })
        {
            var table = new Table().Title("transformer forward, ms (median)").AddColumn("");
            foreach (var m in models) table.AddColumn(Markup.Escape($"{m.Config} ({m.Model.Hidden} hidden, {m.Model.Blocks} blocks, {m.Size} px)"));
            string F(double? v, string unit = "") => v is { } x ? x.ToString("0.##", CultureInfo.InvariantCulture) + unit : "-";
            foreach (var key in models.SelectMany(m => m.Ms.Keys).Distinct()) table.AddRow([key, .. models.Select(m => F(m.Ms.GetValueOrDefault(key)))]);
            foreach (var key in models.SelectMany(m => m.Ratios.Keys).Distinct()) table.AddRow([$"{key} ×", .. models.Select(m => F(m.Ratios.GetValueOrDefault(key), "×"))]);
            foreach (var key in models.SelectMany(m => m.SnrDb.Keys).Distinct()) table.AddRow([$"SNR {key}", .. models.Select(m => F(m.SnrDb.GetValueOrDefault(key), " dB"))]);
            foreach (var key in models.SelectMany(m => m.PsnrDb.Keys).Distinct()) table.AddRow([$"PSNR {key}", .. models.Select(m => F(m.PsnrDb.GetValueOrDefault(key), " dB"))]);
            AnsiConsole.Write(table);
            foreach (var note in models.SelectMany(m => m.Notes.Select(n => $"{m.Config}: {n}"))) AnsiConsole.MarkupLineInterpolated($"[grey]{note}[/]");
        }
        if (pipeline is not null)
        {
            var runs = new Table().Title("ingest to Storage Queues on Azurite").AddColumns("items", "seconds", "tasks/s", "peak working set MB", "peak managed MB");
            foreach (var r in pipeline.IngestRuns)
                runs.AddRow($"{r.Items:N0}", $"{r.Seconds:0.0}", $"{r.TasksPerSecond:N0}", $"{r.PeakWorkingSetMb:0}", $"{r.PeakManagedMb:0}");
            AnsiConsole.Write(runs);
            if (pipeline.Overhead is { } o)
            {
                AnsiConsole.MarkupLineInterpolated($"overhead per item (the worker over a {o.Items}-item job, render replayed as a wait of its time: queue + state + blob writes + report not hidden behind renders): {o.OverheadMsPerItem:0.0} ms vs render {o.RenderMsPerItem:0} ms ({o.Model}, {o.Size} px, {o.Steps} steps, {o.Quantization}) = [bold]{pipeline.OverheadShareOfRender:P2}[/] of render time");
                AnsiConsole.MarkupLineInterpolated($"pipeline work per item (the same job, renders taking no time): {o.PipelineWorkMsPerItem:0.0} ms = {o.PipelineWorkMsPerItem / o.RenderMsPerItem:P2} of render time");
            }
            foreach (var note in pipeline.Notes) AnsiConsole.MarkupLineInterpolated($"[grey]{note}[/]");
        }
    }
}
