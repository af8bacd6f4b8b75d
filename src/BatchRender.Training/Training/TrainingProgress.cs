namespace BatchRender.Training.Training;

/// <summary>One progress report: a step of a stage (with its smoothed loss and ETA), or a message (stage start, the
/// precision decision, a checkpoint). The CLI renders it with Spectre.Console.</summary>
/// <param name="Stage">"tokenizers", "vae", "latents", "diffusion" or "write".</param>
/// <param name="Loss">Exponentially smoothed training loss; null for messages.</param>
public sealed record TrainingProgress(string Stage, int Step, int TotalSteps, double? Loss, double SamplesPerSecond,
                                      TimeSpan Elapsed, TimeSpan? Eta, string? Message = null);

/// <summary>A stage's outcome, written into the training report.</summary>
/// <param name="LossCurve">(step, smoothed loss) every few steps.</param>
public sealed record StageReport(string Stage, int Steps, int BatchSize, double Seconds, double SamplesPerSecond, double FirstLoss,
                                 double FinalLoss, IReadOnlyList<double[]> LossCurve, bool Resumed);

/// <summary>training_report.json beside the model.</summary>
public sealed record TrainingReport
{
    public required int Seed { get; init; }
    public required int Threads { get; init; }
    public required string Precision { get; init; }
    public required int ImageSize { get; init; }
    public required IReadOnlyList<StageReport> Stages { get; init; }
    /// <summary>The model directory whose VAE this run took instead of training one (null: trained here, stage "vae").</summary>
    public string? VaeFrom { get; init; }
    /// <summary>Weight of the text attribute heads' loss in the joint stage (null in reports written before session 8).</summary>
    public double? AttributeLossWeight { get; init; }
    /// <summary>Weight of the DiT latent-cell head's loss in the joint stage (null in reports written before it existed).</summary>
    public double? CellLossWeight { get; init; }
    /// <summary>Extra weight of object cells in the v-loss (null in reports written before session 8).</summary>
    public double? DiffusionObjectWeight { get; init; }
    public required double VaePsnrDb { get; init; }
    /// <summary>The same over object pixels alone: what decides whether rendered objects keep their colour and shape.</summary>
    public double VaeObjectPsnrDb { get; init; } = double.NaN;
    public required double VaeScalingFactor { get; init; }
    /// <summary>The saved (EMA) model's v-loss on a probe set with its own captions and with others' (see
    /// <see cref="DiffusionStage.ProbeTextConditioning"/>).</summary>
    public required TextConditioningProbe TextConditioning { get; init; }
    public required int LatentCacheSize { get; init; }
    public required double LatentSeconds { get; init; }
    public required double TokenizerSeconds { get; init; }
    public required double TotalSeconds { get; init; }
    public required IReadOnlyDictionary<string, long> Parameters { get; init; }
    public required long ModelBytes { get; init; }
}
