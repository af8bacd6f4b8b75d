using System.CommandLine;
using BatchRender.Training.Training;
using Spectre.Console;

namespace BatchRender.Cli.Commands;

/// <summary><c>train [--out DIR] [--work DIR] [--resume] [--threads N] [--smoke]</c>: trains the demo model with Training's
/// <see cref="DemoTrainer"/> (a progress bar per stage); the model directory changes only when training finishes.</summary>
public static class TrainCommand
{
    public static Command Create()
    {
        var output = new Option<string>("--out") { Description = "The model directory written at the end", DefaultValueFactory = _ => "models/demo" };
        var work = new Option<string>("--work") { Description = "Checkpoints, latent cache and tokenizers", DefaultValueFactory = _ => ".scratch/train" };
        var resume = new Option<bool>("--resume") { Description = "Continue from the checkpoints in --work" };
        var threads = new Option<int>("--threads") { Description = "Intra-op threads (0 = TorchSharp's default)" };
        var smoke = new Option<bool>("--smoke") { Description = "A minutes-long run at tiny budgets (checks the whole path; the model is not useful)" };
        var vaeMinutes = new Option<double?>("--vae-minutes") { Description = "Time budget of the autoencoder stage (default: the trainer's)" };
        var diffusionMinutes = new Option<double?>("--diffusion-minutes") { Description = "Time budget of the joint text-encoder + DiT stage (default: the trainer's)" };
        var latentCache = new Option<int?>("--latent-cache") { Description = "Scenes encoded once for the diffusion stage (default: the trainer's)" };
        var vaeSteps = new Option<int?>("--vae-steps") { Description = "Step budget of the autoencoder stage, in one cosine (instead of the trainer's, which restarts half-way)" };
        var diffusionSteps = new Option<int?>("--diffusion-steps") { Description = "Step budget of the joint stage (instead of minutes)" };
        var diffusionBatch = new Option<int?>("--diffusion-batch") { Description = "Batch size of the joint stage (default: the trainer's)" };
        var objectWeight = new Option<double?>("--diffusion-object-weight") { Description = "Extra weight of latent cells holding an object in the diffusion loss (default: the trainer's; 0: every cell alike)" };
        var cellLossWeight = new Option<double?>("--cell-loss-weight") { Description = "Weight of the DiT's per-latent-cell colour and shape loss (default: the trainer's; 0: off)" };
        var vaeCrop = new Option<int?>("--vae-crop") { Description = "Train the autoencoder on random crops of this size (default: the trainer's)" };
        var vaeFrom = new Option<string?>("--vae-from") { Description = "Take the VAE of this model directory instead of training one (e.g. models/demo)" };
        var textWarmupSteps = new Option<int?>("--text-warmup-steps") { Description = "Steps of the text encoders' attribute warm-up before the joint stage (0: none; default: the trainer's)" };
        var command = new Command("train", "Train the bilingual demo model into models/demo")
            { output, work, resume, threads, smoke, vaeMinutes, diffusionMinutes, latentCache, vaeSteps, diffusionSteps, diffusionBatch, objectWeight, cellLossWeight, vaeCrop, vaeFrom, textWarmupSteps };
        command.SetAction((parse, ct) => CliRunner.RunAsync(parse, async _ =>
        {
            var options = parse.GetValue(smoke)
                ? DemoTrainingOptions.Smoke(parse.GetValue(output)!, parse.GetValue(work)!)
                : new DemoTrainingOptions { OutputDirectory = parse.GetValue(output)!, WorkDirectory = parse.GetValue(work)! };
            options = options with { Resume = parse.GetValue(resume), Threads = parse.GetValue(threads) };
            if (parse.GetValue(vaeMinutes) is { } vm) options = options with { Vae = options.Vae with { Minutes = vm, Steps = null, RestartAt = null } };
            if (parse.GetValue(diffusionMinutes) is { } dm) options = options with { Diffusion = options.Diffusion with { Minutes = dm, Steps = null } };
            if (parse.GetValue(vaeSteps) is { } vs) options = options with { Vae = options.Vae with { Steps = vs, Minutes = null, RestartAt = null } };
            if (parse.GetValue(diffusionSteps) is { } ds) options = options with { Diffusion = options.Diffusion with { Steps = ds, Minutes = null } };
            if (parse.GetValue(diffusionBatch) is { } db) options = options with { Diffusion = options.Diffusion with { BatchSize = db } };
            if (parse.GetValue(objectWeight) is { } ow) options = options with { DiffusionObjectWeight = ow };
            if (parse.GetValue(cellLossWeight) is { } cw) options = options with { CellLossWeight = cw };
            if (parse.GetValue(latentCache) is { } lc) options = options with { LatentCacheSize = lc };
            if (parse.GetValue(vaeCrop) is { } crop) options = options with { VaeCropSize = crop };
            if (parse.GetValue(vaeFrom) is { } from) options = options with { VaeFrom = from };
            if (parse.GetValue(textWarmupSteps) is { } tw)
            {
                if (tw < 0) throw new CliInputException($"--text-warmup-steps {tw} must not be negative");
                options = options with { TextWarmup = tw == 0 ? null : (options.TextWarmup ?? new DemoTrainingOptions().TextWarmup!) with { Steps = tw, Minutes = null } };
            }
            // Bad options (a --vae-from that is no model, say) are invalid input, named before anything trains.
            try { options.Validated(); }
            catch (ArgumentException e) { throw new CliInputException(e.Message); }
            TrainingReport report = null!;
            await AnsiConsole.Progress().AutoClear(false)
                .Columns(new TaskDescriptionColumn(), new ProgressBarColumn(), new PercentageColumn(), new ElapsedTimeColumn(), new RemainingTimeColumn())
                .StartAsync(async context =>
                {
                    var stages = new Dictionary<string, ProgressTask>();
                    var progress = new InlineProgress(p =>
                    {
                        lock (stages)
                        {
                            if (!stages.TryGetValue(p.Stage, out var bar)) stages[p.Stage] = bar = context.AddTask(Markup.Escape(p.Stage));
                            bar.MaxValue = Math.Max(1, p.TotalSteps);
                            bar.Value = p.Step;
                            bar.Description = Markup.Escape(p.Loss is { } loss ? $"{p.Stage} loss {loss:0.0000}" : p.Message is { } m ? $"{p.Stage}: {m}" : p.Stage);
                        }
                        // Stage results and checkpoint diagnostics stay on screen (and in a redirected log) above the bars.
                        if (p.Loss is null && p.Message is { } message) AnsiConsole.MarkupLineInterpolated($"[grey]{p.Stage}[/]: {message}");
                    });
                    report = await DemoTrainer.RunAsync(options, progress, ct);
                });
            AnsiConsole.MarkupLineInterpolated($"[green]trained[/]: {Path.GetFullPath(options.OutputDirectory)} ({report.Stages.Count} stages; report {DemoTrainer.ReportFileName})");
            return ExitCodes.Success;
        }));
        return command;
    }

    /// <summary>Reports on the trainer's thread (a Progress&lt;T&gt; would post to a context the console does not have).</summary>
    private sealed class InlineProgress(Action<TrainingProgress> report) : IProgress<TrainingProgress>
    {
        public void Report(TrainingProgress value) => report(value);
    }
}
