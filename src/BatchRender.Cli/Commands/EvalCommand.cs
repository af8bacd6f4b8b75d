using System.CommandLine;
using BatchRender.Model.Autoencoders;
using BatchRender.Model.Pipelines;
using BatchRender.Training.Dataset;
using BatchRender.Training.Evaluation;
using Microsoft.Extensions.Configuration;
using Spectre.Console;

namespace BatchRender.Cli.Commands;

/// <summary>
/// <c>eval [--model M] [--json] [--html DIR]</c>: scores prompt adherence with Training's evaluation runner: the held-out
/// evaluation set rendered by the pipeline in fp32 (the reference: images, video, inpainting) and int8-dynamic (images),
/// read back by the attribute analyser. <c>--json</c> prints the DESIGN.md object on stdout.
/// </summary>
public static class EvalCommand
{
    /// <summary>The seed of the held-out split the trainer uses (DemoTrainer draws the same split from it).</summary>
    public const int DefaultSplitSeed = 20261125;

    public static Command Create()
    {
        var model = new Option<string>("--model") { Description = "A configured model name or a model directory", DefaultValueFactory = _ => "demo" };
        var json = new Option<bool>("--json") { Description = "Print one JSON object on stdout (logs on stderr)" };
        var html = new Option<DirectoryInfo?>("--html") { Description = "Write an HTML report (every render with its verdict) to DIR/eval.html" };
        var steps = new Option<int>("--steps") { Description = "Sampler steps per render", DefaultValueFactory = _ => 20 };
        var guidance = new Option<double?>("--guidance")
            { Description = "Classifier-free guidance scale (default: the configured model's own, Models:NAME:GuidanceScale, else Defaults:GuidanceScale)" };
        var sampler = new Option<string>("--sampler") { Description = "ddpm, ddim or dpmsolver++", DefaultValueFactory = _ => "ddim" };
        var images = new Option<int>("--images") { Description = "Image scenes (each in English and Chinese)", DefaultValueFactory = _ => 60 };
        var splitSeed = new Option<int>("--split-seed") { Description = "Seed of the held-out split (the trainer's)", DefaultValueFactory = _ => DefaultSplitSeed };
        var vaeCeiling = new Option<bool>("--vae-ceiling")
            { Description = "Also score the ground truth passed through the model's VAE (mode vae-roundtrip): what the DiT could reach at best" };
        var command = new Command("eval", "Score prompt adherence of a model (shape, colour, position, size, background, style; video; inpainting)")
            { model, json, html, steps, guidance, sampler, images, splitSeed, vaeCeiling };
        command.SetAction((parse, ct) => CliRunner.RunAsync(parse, configuration =>
        {
            var name = parse.GetValue(model)!;
            var directory = Directory.Exists(name) ? Path.GetFullPath(name) : CliConfiguration.ModelDirectory(configuration, name);
            if (!File.Exists(Path.Combine(directory, "model_index.json")))
                throw new CliInputException(name == "demo"
                    ? $"the demo model is not at {directory}: train it first with `batchrender train`"
                    : $"model '{name}': {directory} is not a model directory (no model_index.json)");
            if (parse.GetValue(steps) < 1 || parse.GetValue(images) < 1) throw new CliInputException("--steps and --images must be at least 1");
            // A model directory takes the guidance of the configured model at that path (the shipped demo's, say).
            var guidanceScale = parse.GetValue(guidance) ?? CliConfiguration.DefaultGuidanceScale(configuration, name, directory);
            if (guidanceScale is < 0 or > 30) throw new CliInputException($"--guidance {guidanceScale} must be a number from 0 to 30");
            SamplerKind samplerKind;
            try { samplerKind = WireNames.ParseSampler(parse.GetValue(sampler)!); }
            catch (ArgumentException e) { throw new CliInputException($"--sampler: {e.Message}"); }

            var set = EvalSet.Create(new HeldOutSplit(parse.GetValue(splitSeed)), new EvalSetOptions { ImageScenes = parse.GetValue(images) });
            var settings = new EvalRenderSettings { Steps = parse.GetValue(steps), GuidanceScale = guidanceScale, Sampler = samplerKind };
            var worker = configuration.GetSection(Core.Configuration.ConfigSections.Worker).Get<Core.Configuration.WorkerOptions>() ?? new();
            Console.Error.WriteLine($"eval: {set.Prompts.Count} prompts, model {directory}, {settings.Steps} {settings.Sampler.ToWire()} steps, guidance {settings.GuidanceScale}");
            using var fp32 = HunyuanDiTPipeline.Load(new PipelineLoadOptions { ModelDirectory = directory, Device = worker.Device, Threads = worker.Threads });
            using var int8 = HunyuanDiTPipeline.Load(new PipelineLoadOptions
                { ModelDirectory = directory, Device = worker.Device, Threads = worker.Threads, Quantization = QuantizationMode.Int8Dynamic });
            var renderers = new List<(string, EvalRenderer)>
            {
                ("fp32", PipelineEvalRenderer.Create(fp32, set.ImageSize, settings)),
                ("int8-dynamic", PipelineEvalRenderer.Create(int8, set.ImageSize, settings)),
            };
            using var vae = parse.GetValue(vaeCeiling) ? AutoencoderKL.FromPretrained(Path.Combine(directory, "vae")) : null;
            if (vae is not null) renderers.Add(("vae-roundtrip", AutoencoderRoundTripRenderer.Create(vae, set)));
            using var result = new EvalRunner(new AttributeAnalyser(), new EvalRunOptions { Model = Path.GetFileName(name.TrimEnd('/')) }).Run(set, renderers, ct);

            if (parse.GetValue(html) is { } folder)
            {
                folder.Create();
                var page = Path.Combine(folder.FullName, "eval.html");
                EvalHtmlReport.Write(result, page);
                Console.Error.WriteLine($"eval: report at {page}");
            }
            if (parse.GetValue(json)) Console.Out.WriteLine(result.Report.ToJson());
            else Print(result.Report);
            return Task.FromResult(ExitCodes.Success);
        }));
        return command;
    }

    private static void Print(EvalReport report)
    {
        var table = new Table().Title($"prompt adherence: {report.Model}, {report.Prompts} prompts").AddColumns("mode", "language", "shape", "colour", "position", "size", "background", "style", "all");
        foreach (var (mode, languages) in report.Images)
            foreach (var (language, s) in languages)
                table.AddRow(mode, language, $"{s.Shape:P0}", $"{s.Colour:P0}", $"{s.Position:P0}", $"{s.Size:P0}", $"{s.Background:P0}", $"{s.Style:P0}", $"{s.All:P0}");
        AnsiConsole.Write(table);
        AnsiConsole.MarkupLineInterpolated($"video: direction {report.Video.Direction:P0}, coherence {report.Video.Coherence:0.###} · inpaint: region {report.Inpaint.Region:P0}, outside unchanged {report.Inpaint.OutsideUnchanged} · analyser on ground truth {report.AnalyserOnGroundTruth:P0}");
    }
}
