using BatchRender.Model.Pipelines;
using TorchSharp;
using static TorchSharp.torch;

namespace BatchRender.Model.Schedulers;

/// <summary>
/// Deterministic DDIM (Song et al. 2020, eta = 0), as diffusers' DDIMScheduler: x_{t'} = sqrt(abar') x0 + sqrt(1 - abar') eps.
/// The previous timestep is t - T / steps (integer division) as in diffusers, whatever the spacing.
/// </summary>
public sealed class DdimScheduler : SchedulerBase
{
    public DdimScheduler(SchedulerConfig config) : base(config, defaultClipSample: true)
    {
        TimestepSpacing = config.TimestepSpacing ?? Schedulers.TimestepSpacing.Leading;
        StepsOffset = config.StepsOffset ?? 0;
        // abar used for the step past the last timestep: 1 (set_alpha_to_one) or abar_0.
        FinalAlphaCumprod = config.SetAlphaToOne ?? true ? 1.0 : Schedule.AlphasCumprod[0];
        UseTimesteps(Enumerable.Range(0, Schedule.NumTrainTimesteps).Reverse().Select(t => (long)t).ToArray(), inferenceSchedule: false);
    }

    public override SamplerKind Kind => SamplerKind.Ddim;
    public string TimestepSpacing { get; }
    public int StepsOffset { get; }
    public double FinalAlphaCumprod { get; }
    private int _steps;

    public override void SetTimesteps(int steps)
    {
        UseTimesteps(Schedulers.TimestepSpacing.ForSteps(TimestepSpacing, steps, Schedule.NumTrainTimesteps, StepsOffset));
        _steps = steps;
    }

    public long PreviousTimestep(long t) => t - Schedule.NumTrainTimesteps / _steps;

    public override Tensor Step(Tensor modelOutput, long timestep, Tensor sample, Generator? generator = null)
    {
        if (!HasInferenceSchedule) throw new InvalidOperationException("DDIM: call SetTimesteps before Step");
        using var scope = NewDisposeScope();
        long prevT = PreviousTimestep(timestep);
        double abar = AlphaCumprod(timestep);
        double abarPrev = prevT >= 0 ? AlphaCumprod(prevT) : FinalAlphaCumprod;
        double betaProd = 1 - abar;

        Tensor x0, eps;
        switch (PredictionType)
        {
            case PredictionType.Epsilon:
                x0 = (sample - Math.Sqrt(betaProd) * modelOutput) / Math.Sqrt(abar);
                eps = modelOutput;
                break;
            case PredictionType.VPrediction:
                x0 = Math.Sqrt(abar) * sample - Math.Sqrt(betaProd) * modelOutput;
                eps = Math.Sqrt(abar) * modelOutput + Math.Sqrt(betaProd) * sample;
                break;
            default:
                x0 = modelOutput;
                eps = (sample - Math.Sqrt(abar) * x0) / Math.Sqrt(betaProd);
                break;
        }
        x0 = ClipOrThreshold(x0);

        // eta = 0: no variance term, the "direction pointing to x_t" keeps the predicted noise.
        var prev = Math.Sqrt(abarPrev) * x0 + Math.Sqrt(1 - abarPrev) * eps;
        return prev.to_type(sample.dtype).MoveToOuterDisposeScope();
    }

    public override Tensor AddNoise(Tensor originalSamples, Tensor noise, long timestep) =>
        AddNoiseAt(originalSamples, noise, AlphaCumprod(timestep));
}
