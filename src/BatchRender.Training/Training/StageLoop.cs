using System.Diagnostics;
using System.Runtime.InteropServices;
using System.Text.Json;
using TorchSharp;
using static TorchSharp.torch;

namespace BatchRender.Training.Training;

/// <summary>What a stage checkpoint's state.json holds besides the weights. The data and noise of step s are pure
/// functions of (seed, s), so seed and step are the whole RNG state: a resumed stage draws exactly what an
/// uninterrupted one would have.</summary>
internal sealed record StageState
{
    public int Seed { get; init; }
    public int BatchSize { get; init; }
    public int Step { get; init; }
    public int TotalSteps { get; init; }
    public bool Completed { get; init; }
    /// <summary>Where an extension of a completed stage began (0: none): its steps run a schedule of their own.</summary>
    public int ExtendedFrom { get; init; }
    public double SmoothedLoss { get; init; } = double.NaN;
    public double FirstLoss { get; init; } = double.NaN;
    public double Seconds { get; init; }
    public List<double[]> LossCurve { get; init; } = [];
}

/// <summary>The optimisation loop shared by the stages: AdamW with warm-up + cosine decay, gradient clipping, EMA shadow
/// weights, periodic checkpoints (live + EMA weights, optimizer state, step) with resume, a step budget or a time budget,
/// and progress with smoothed loss and ETA.</summary>
internal sealed class StageLoop
{
    private const int TimingProbeSteps = 12;
    private readonly string stage;
    private readonly IReadOnlyList<(nn.Module Live, nn.Module Shadow)> modules;
    private readonly StageBudget budget;
    private readonly int seed;
    private readonly string checkpointDirectory;
    private readonly IProgress<TrainingProgress>? progress;

    public StageLoop(string stage, IReadOnlyList<(nn.Module Live, nn.Module Shadow)> modules, StageBudget budget, int seed,
                     string checkpointDirectory, IProgress<TrainingProgress>? progress)
    {
        this.stage = stage;
        this.modules = modules;
        this.budget = budget;
        this.seed = seed;
        this.checkpointDirectory = checkpointDirectory;
        this.progress = progress;
    }

    /// <summary>True when a finished checkpoint of this stage exists (its EMA weights are loaded into the shadows).</summary>
    public bool TryLoadCompleted(out StageReport? report)
    {
        report = null;
        var state = ReadState();
        if (state is not { Completed: true }) return false;
        if (budget.Steps is { } steps && steps > state.TotalSteps) return false;   // a larger step budget extends it (Run)
        RequireSameModules();
        for (int i = 0; i < modules.Count; i++) LoadWeights(modules[i].Shadow, $"ema-{i}.dat");
        report = ToReport(state, resumed: true);
        return true;
    }

    /// <summary>A checkpoint holds one live and one EMA file per module; a run that trains another set of modules (a
    /// training-only head added or left out since, say) cannot continue it, and says so instead of failing on a file.</summary>
    private void RequireSameModules()
    {
        int saved = 0;
        while (File.Exists(Path.Combine(checkpointDirectory, $"live-{saved}.dat"))) saved++;
        if (saved != modules.Count)
            throw new InvalidOperationException($"{checkpointDirectory}: the checkpoint holds {saved} networks, this run trains {modules.Count} " +
                                                "(a training-only head turned on or off since, e.g. --cell-loss-weight); run without --resume, or with the options it was trained with");
    }

    /// <summary>Loads one network's checkpoint file; a network of other sizes (the demo sizes changed since, say) is
    /// refused with a reason rather than TorchSharp's size error alone.</summary>
    private void LoadWeights(nn.Module module, string file)
    {
        var path = Path.Combine(checkpointDirectory, file);
        try { module.load(path); }
        catch (Exception e) when (e is ArgumentException or InvalidOperationException or ExternalException)
        {
            throw new InvalidOperationException($"{path}: the checkpoint's network does not fit this run's ({e.Message}); the model sizes " +
                                                "changed since it was written: run without --resume, or with the sizes it was trained with", e);
        }
    }

    /// <param name="lossAt">The loss of step s (a scalar with a graph); must draw everything from (seed, s).</param>
    /// <param name="checkpointNote">Called at each checkpoint; its text (a diagnostic) goes into the progress message.</param>
    public StageReport Run(Func<int, Tensor> lossAt, bool resume, CancellationToken cancellationToken, Func<string>? checkpointNote = null)
    {
        var parameters = modules.SelectMany(m => m.Live.parameters()).ToList();
        using var optimizer = optim.AdamW(parameters, lr: budget.LearningRate, beta1: 0.9, beta2: 0.999, eps: 1e-8, weight_decay: budget.WeightDecay);
        var emas = modules.Select(m => new ExponentialMovingAverage(m.Live, m.Shadow, budget.EmaDecay)).ToList();

        var state = new StageState { Seed = seed, BatchSize = budget.BatchSize, TotalSteps = budget.Steps ?? int.MaxValue };
        bool resumed = false;
        if (resume && ReadState() is { } saved)
        {
            if (saved.Seed != seed) throw new InvalidOperationException($"{checkpointDirectory}: checkpoint was trained with seed {saved.Seed}, not {seed}");
            if (saved.BatchSize != budget.BatchSize)
                throw new InvalidOperationException($"{checkpointDirectory}: checkpoint was trained with batch size {saved.BatchSize}, not {budget.BatchSize}");
            RequireSameModules();
            for (int i = 0; i < modules.Count; i++)
            {
                LoadWeights(modules[i].Live, $"live-{i}.dat");
                LoadWeights(modules[i].Shadow, $"ema-{i}.dat");
            }
            optimizer.load_state_dict(Path.Combine(checkpointDirectory, "optimizer.dat"));
            state = saved;
            resumed = true;
            if (saved.Completed && budget.Steps is { } steps && steps > saved.TotalSteps)
            {
                // Extending a finished stage: a warm restart (SGDR) at its last step, as a budget's RestartAt is.
                state = saved with { TotalSteps = steps, Completed = false, ExtendedFrom = saved.Step };
                Report(state, null, 0, $"extending {stage} from step {saved.Step} to {steps}");
            }
            else Report(state, null, 0, $"resuming {stage} at step {state.Step} of {state.TotalSteps}");
        }

        foreach (var m in modules) m.Live.train();
        var clock = Stopwatch.StartNew();
        double secondsBefore = state.Seconds;
        int stepsThisSession = 0;
        var curveEvery = Math.Max(1, (budget.Steps ?? 2000) / 200);
        while (state.Step < state.TotalSteps)
        {
            cancellationToken.ThrowIfCancellationRequested();
            int step = state.Step;
            // An extension of a finished stage restarts where it began; otherwise the budget says (usually never).
            double lr = LearningRateSchedule.At(step, state.TotalSteps == int.MaxValue ? step + 1 + budget.WarmupSteps : state.TotalSteps,
                                                state.ExtendedFrom > 0 ? state.ExtendedFrom : budget.RestartAt,
                                                budget.LearningRate, budget.WarmupSteps, budget.MinLearningRateFraction);
            foreach (var group in optimizer.ParamGroups) group.LearningRate = lr;

            double loss;
            using (var scope = NewDisposeScope())
            {
                optimizer.zero_grad();
                var lossTensor = lossAt(step);
                lossTensor.backward();
                nn.utils.clip_grad_norm_(parameters, budget.GradientClipNorm);
                optimizer.step();
                loss = lossTensor.item<float>();
            }
            if (!double.IsFinite(loss)) throw new InvalidOperationException($"{stage}: loss became {loss} at step {step} (lower the learning rate)");
            foreach (var ema in emas) ema.Update(step);

            double smoothed = double.IsNaN(state.SmoothedLoss) ? loss : 0.98 * state.SmoothedLoss + 0.02 * loss;
            var curve = state.LossCurve;
            if (step % curveEvery == 0) curve.Add([step, smoothed]);
            stepsThisSession++;
            state = state with
            {
                Step = step + 1, SmoothedLoss = smoothed, FirstLoss = double.IsNaN(state.FirstLoss) ? loss : state.FirstLoss,
                Seconds = secondsBefore + clock.Elapsed.TotalSeconds, LossCurve = curve,
            };
            double secondsPerStep = clock.Elapsed.TotalSeconds / stepsThisSession;

            if (state.TotalSteps == int.MaxValue && stepsThisSession == TimingProbeSteps)
            {
                // Time budget: the probe fixes the schedule length (warm-up covers the probe, so no step saw another schedule).
                double left = budget.Minutes!.Value * 60 - state.Seconds;
                state = state with { TotalSteps = Math.Max(state.Step + 1, state.Step + (int)(left / secondsPerStep)) };
                Report(state, null, secondsPerStep, $"{secondsPerStep:F3} s/step -> {state.TotalSteps} steps in {budget.Minutes} min");
            }

            bool last = state.Step >= state.TotalSteps;
            if (last) state = state with { Completed = true };
            if (last || state.Step % budget.CheckpointEvery == 0) Save(optimizer, state, checkpointNote);
            Report(state, smoothed, secondsPerStep, null);
        }
        return ToReport(state, resumed);
    }

    private void Report(StageState state, double? loss, double secondsPerStep, string? message)
    {
        int total = state.TotalSteps == int.MaxValue ? 0 : state.TotalSteps;
        TimeSpan? eta = total > 0 && secondsPerStep > 0 ? TimeSpan.FromSeconds((total - state.Step) * secondsPerStep) : null;
        double samplesPerSecond = secondsPerStep > 0 ? budget.BatchSize / secondsPerStep : 0;
        progress?.Report(new TrainingProgress(stage, state.Step, total, loss, samplesPerSecond, TimeSpan.FromSeconds(state.Seconds), eta, message));
    }

    private StageReport ToReport(StageState state, bool resumed) =>
        new(stage, state.Step, budget.BatchSize, state.Seconds, state.Seconds > 0 ? state.Step * budget.BatchSize / state.Seconds : 0,
            state.FirstLoss, state.SmoothedLoss, state.LossCurve, resumed);

    private StageState? ReadState()
    {
        var path = Path.Combine(checkpointDirectory, "state.json");
        return File.Exists(path) ? JsonSerializer.Deserialize<StageState>(File.ReadAllText(path)) : null;
    }

    /// <summary>Writes the checkpoint beside the previous one and swaps it in, so an interrupted save leaves the last
    /// good checkpoint.</summary>
    private void Save(TorchSharp.Modules.AdamW optimizer, StageState state, Func<string>? note)
    {
        var staging = checkpointDirectory + ".saving";
        if (Directory.Exists(staging)) Directory.Delete(staging, recursive: true);
        Directory.CreateDirectory(staging);
        for (int i = 0; i < modules.Count; i++)
        {
            modules[i].Live.save(Path.Combine(staging, $"live-{i}.dat"));
            modules[i].Shadow.save(Path.Combine(staging, $"ema-{i}.dat"));
        }
        optimizer.save_state_dict(Path.Combine(staging, "optimizer.dat"));
        File.WriteAllText(Path.Combine(staging, "state.json"), JsonSerializer.Serialize(state));
        var old = checkpointDirectory + ".old";
        if (Directory.Exists(old)) Directory.Delete(old, recursive: true);
        if (Directory.Exists(checkpointDirectory)) Directory.Move(checkpointDirectory, old);
        Directory.Move(staging, checkpointDirectory);
        if (Directory.Exists(old)) Directory.Delete(old, recursive: true);
        Report(state, null, 0, $"checkpoint at step {state.Step}" + (note is null ? "" : $"; {note()}"));
    }
}
