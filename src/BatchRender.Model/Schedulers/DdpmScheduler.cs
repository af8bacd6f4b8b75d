using BatchRender.Model.Pipelines;
using TorchSharp;
using static TorchSharp.torch;

namespace BatchRender.Model.Schedulers;

/// <summary>
/// DDPM ancestral sampling (Ho et al. 2020), as diffusers' DDPMScheduler: posterior mean from the predicted x0 (formula 7)
/// plus fixed variance noise. Hunyuan-DiT's own scheduler (fixed_small, v_prediction, leading spacing + offset 1).
/// </summary>
public sealed class DdpmScheduler : SchedulerBase
{
    public DdpmScheduler(SchedulerConfig config) : base(config, defaultClipSample: true)
    {
        VarianceType = config.VarianceType ?? "fixed_small";
        if (VarianceType is not ("fixed_small" or "fixed_small_log" or "fixed_large"))
            throw new ArgumentException(
                $"scheduler config: DDPM variance_type '{VarianceType}' is not supported (expected fixed_small, fixed_small_log or fixed_large; learned variances are not used by this pipeline)");
        TimestepSpacing = config.TimestepSpacing ?? Schedulers.TimestepSpacing.Leading;
        StepsOffset = config.StepsOffset ?? 0;
        // Before SetTimesteps: every training timestep, descending (diffusers' initial state).
        UseTimesteps(Enumerable.Range(0, Schedule.NumTrainTimesteps).Reverse().Select(t => (long)t).ToArray(), inferenceSchedule: false);
    }

    public override SamplerKind Kind => SamplerKind.Ddpm;
    public string VarianceType { get; }
    public string TimestepSpacing { get; }
    public int StepsOffset { get; }

    public override void SetTimesteps(int steps)
    {
        UseTimesteps(Schedulers.TimestepSpacing.ForSteps(TimestepSpacing, steps, Schedule.NumTrainTimesteps, StepsOffset));
    }

    /// <summary>The timestep after <paramref name="t"/>: the next entry of the schedule (-1 after the last), or t - 1
    /// before SetTimesteps.</summary>
    public long PreviousTimestep(long t)
    {
        if (!HasInferenceSchedule) return t - 1;
        int i = IndexOf(t);
        return i == Timesteps.Count - 1 ? -1 : Timesteps[i + 1];
    }

    public override Tensor Step(Tensor modelOutput, long timestep, Tensor sample, Generator? generator = null)
    {
        using var scope = NewDisposeScope();
        long t = timestep, prevT = PreviousTimestep(t);

        // 1. alphas and betas of this (possibly multi-timestep) jump
        double abar = AlphaCumprod(t);
        double abarPrev = prevT >= 0 ? AlphaCumprod(prevT) : 1.0;
        double betaProd = 1 - abar, betaProdPrev = 1 - abarPrev;
        double currentAlpha = abar / abarPrev, currentBeta = 1 - currentAlpha;

        // 2. predicted x0
        var x0 = PredictionType switch
        {
            PredictionType.Epsilon => (sample - Math.Sqrt(betaProd) * modelOutput) / Math.Sqrt(abar),
            PredictionType.VPrediction => Math.Sqrt(abar) * sample - Math.Sqrt(betaProd) * modelOutput,
            _ => modelOutput,
        };
        x0 = ClipOrThreshold(x0);

        // 3. posterior mean mu_t(x_t, x0)
        double x0Coeff = Math.Sqrt(abarPrev) * currentBeta / betaProd;
        double sampleCoeff = Math.Sqrt(currentAlpha) * betaProdPrev / betaProd;
        var prev = x0Coeff * x0 + sampleCoeff * sample;

        // 4. noise (none at t = 0)
        if (t > 0)
        {
            var noise = Noise(modelOutput, modelOutput.dtype, generator);
            double variance = Math.Max(betaProdPrev / betaProd * currentBeta, 1e-20);
            // fixed_small and fixed_small_log both give the posterior std; fixed_large uses beta itself.
            double std = VarianceType == "fixed_large" ? Math.Sqrt(currentBeta) : Math.Sqrt(variance);
            prev = prev + std * noise;
        }
        return prev.to_type(sample.dtype).MoveToOuterDisposeScope();
    }

    public override Tensor AddNoise(Tensor originalSamples, Tensor noise, long timestep) =>
        AddNoiseAt(originalSamples, noise, AlphaCumprod(timestep));
}
