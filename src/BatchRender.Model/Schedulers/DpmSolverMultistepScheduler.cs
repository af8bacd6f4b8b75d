using BatchRender.Model.Pipelines;
using TorchSharp;
using static TorchSharp.torch;

namespace BatchRender.Model.Schedulers;

/// <summary>
/// DPM-Solver++(2M) (Lu et al. 2022, arXiv 2211.01095), as diffusers' DPMSolverMultistepScheduler with
/// algorithm_type "dpmsolver++": the data-prediction (x0) multistep solver in log-SNR time lambda = log(alpha/sigma),
/// second order from the second step on, first order on the first step and, with lower_order_final (or a zero final
/// sigma), on the last. Holds the previous x0 prediction between steps; <see cref="SetTimesteps"/> resets it.
/// </summary>
public sealed class DpmSolverMultistepScheduler : SchedulerBase
{
    public DpmSolverMultistepScheduler(SchedulerConfig config) : base(config, defaultClipSample: false)
    {
        SolverOrder = config.SolverOrder ?? 2;
        if (SolverOrder is not (1 or 2))
            throw new ArgumentException($"scheduler config: DPM-Solver++ solver_order {SolverOrder} is not supported (expected 1 or 2)");
        string algorithm = config.AlgorithmType ?? "dpmsolver++";
        if (algorithm is not ("dpmsolver++" or "deis")) // diffusers maps "deis" to dpmsolver++
            throw new ArgumentException($"scheduler config: DPM-Solver algorithm_type '{algorithm}' is not supported (expected dpmsolver++)");
        SolverType = config.SolverType ?? "midpoint";
        if (SolverType is "logrho" or "bh1" or "bh2") SolverType = "midpoint"; // diffusers' mapping of UniPC/DEIS names
        if (SolverType is not ("midpoint" or "heun"))
            throw new ArgumentException($"scheduler config: DPM-Solver solver_type '{SolverType}' is not supported (expected midpoint or heun)");
        foreach (var (flag, name) in new[]
        {
            (config.UseKarrasSigmas, "use_karras_sigmas"), (config.UseExponentialSigmas, "use_exponential_sigmas"),
            (config.UseBetaSigmas, "use_beta_sigmas"), (config.UseLuLambdas, "use_lu_lambdas"), (config.UseFlowSigmas, "use_flow_sigmas"),
        })
        {
            if (flag == true) throw new ArgumentException($"scheduler config: DPM-Solver++ with {name} = true is not supported");
        }
        if (config.VarianceType is "learned" or "learned_range")
            throw new ArgumentException($"scheduler config: DPM-Solver++ with variance_type '{config.VarianceType}' is not supported");
        LowerOrderFinal = config.LowerOrderFinal ?? true;
        EulerAtFinal = config.EulerAtFinal ?? false;
        FinalSigmasType = config.FinalSigmasType ?? "zero";
        if (FinalSigmasType is not ("zero" or "sigma_min"))
            throw new ArgumentException($"scheduler config: final_sigmas_type '{FinalSigmasType}' is not supported (expected zero or sigma_min)");
        TimestepSpacing = config.TimestepSpacing ?? Schedulers.TimestepSpacing.Linspace;
        StepsOffset = config.StepsOffset ?? 0;
        LambdaMinClipped = config.LambdaMinClipped ?? double.NegativeInfinity;

        // sigma = sqrt((1 - abar) / abar) per training timestep, in float32 as diffusers computes it.
        var abar = Schedule.AlphasCumprod.Select(a => (float)a).ToArray();
        if (config.RescaleBetasZeroSnr == true) abar[^1] = MathF.Pow(2, -24); // diffusers: avoid an infinite sigma
        _trainSigmas = abar.Select(a => MathF.Sqrt((1f - a) / a)).ToArray();
        _trainLambdas = abar.Select(a => MathF.Log(MathF.Sqrt(a)) - MathF.Log(MathF.Sqrt(1f - a))).ToArray();
        _modelOutputs = new Tensor?[SolverOrder];
    }

    public override SamplerKind Kind => SamplerKind.DpmSolverPlusPlus;
    public int SolverOrder { get; }
    public string SolverType { get; }
    public bool LowerOrderFinal { get; }
    public bool EulerAtFinal { get; }
    public string FinalSigmasType { get; }
    public string TimestepSpacing { get; }
    public int StepsOffset { get; }
    public double LambdaMinClipped { get; }

    /// <summary>sigma_t = sqrt((1 - abar_t) / abar_t) for each timestep of the schedule, plus the final sigma
    /// (0 or sigma_min): Timesteps.Count + 1 values, float32 like diffusers' table.</summary>
    public IReadOnlyList<double> Sigmas => _sigmas;
    /// <summary>Index of the next step to take (null before the first Step after SetTimesteps).</summary>
    public int? StepIndex => _stepIndex;

    private readonly float[] _trainSigmas;
    private readonly float[] _trainLambdas;
    private double[] _sigmas = [];
    private readonly Tensor?[] _modelOutputs;
    private int _lowerOrderNums;
    private int? _stepIndex;

    public override void SetTimesteps(int steps)
    {
        // lambda_min_clipped cuts the high-noise end of the schedule for numerical stability (cosine schedules).
        int clippedIdx = _trainLambdas.Count(l => l < LambdaMinClipped); // searchsorted on the ascending (flipped) lambdas
        int lastTimestep = Schedule.NumTrainTimesteps - clippedIdx;
        var timesteps = Schedulers.TimestepSpacing.ForStepsDpmSolver(TimestepSpacing, steps, Schedule.NumTrainTimesteps, lastTimestep, StepsOffset);
        foreach (var t in timesteps)
            if (t < 0 || t >= Schedule.NumTrainTimesteps)
                throw new ArgumentException($"DPM-Solver++: timestep {t} from {TimestepSpacing} spacing with steps_offset {StepsOffset} is outside 0..{Schedule.NumTrainTimesteps - 1}");

        float sigmaLast = FinalSigmasType == "sigma_min" ? _trainSigmas[0] : 0f;
        _sigmas = timesteps.Select(t => (double)_trainSigmas[t]).Append(sigmaLast).ToArray();
        UseTimesteps(timesteps);
        ResetState();
    }

    private void ResetState()
    {
        for (int i = 0; i < _modelOutputs.Length; i++)
        {
            _modelOutputs[i]?.Dispose();
            _modelOutputs[i] = null;
        }
        _lowerOrderNums = 0;
        _stepIndex = null;
    }

    /// <summary>diffusers' index_for_timestep: the first match (the second if the timestep repeats, so a restart in
    /// img2img does not skip a step); the last index if absent.</summary>
    private int IndexForTimestep(long timestep)
    {
        var matches = Enumerable.Range(0, Timesteps.Count).Where(i => Timesteps[i] == timestep).Take(2).ToArray();
        return matches.Length switch { 0 => Timesteps.Count - 1, 1 => matches[0], _ => matches[1] };
    }

    private static (double Alpha, double Sigma) AlphaSigma(double sigma)
    {
        double alpha = 1 / Math.Sqrt(sigma * sigma + 1);
        return (alpha, sigma * alpha);
    }

    private static double Lambda((double Alpha, double Sigma) s) => Math.Log(s.Alpha) - Math.Log(s.Sigma);

    /// <summary>The network output converted to the x0 prediction DPM-Solver++ integrates.</summary>
    private Tensor ConvertModelOutput(Tensor modelOutput, Tensor sample)
    {
        var (alpha, sigma) = AlphaSigma(_sigmas[_stepIndex!.Value]);
        var x0 = PredictionType switch
        {
            PredictionType.Epsilon => (sample - sigma * modelOutput) / alpha,
            PredictionType.VPrediction => alpha * sample - sigma * modelOutput,
            _ => modelOutput.alias(),
        };
        return Thresholding ? ThresholdSample(x0) : x0;
    }

    public override Tensor Step(Tensor modelOutput, long timestep, Tensor sample, Generator? generator = null)
    {
        if (!HasInferenceSchedule) throw new InvalidOperationException("DPM-Solver++: call SetTimesteps before Step");
        _stepIndex ??= IndexForTimestep(timestep);
        int i = _stepIndex.Value, n = Timesteps.Count;
        if (i >= n) throw new InvalidOperationException($"DPM-Solver++: all {n} steps were taken; call SetTimesteps to start again");

        bool lowerOrderFinal = i == n - 1 && (EulerAtFinal || (LowerOrderFinal && n < 15) || FinalSigmasType == "zero");

        Tensor x0;
        // The scheduler keeps x0 for the next step, so it must outlive the caller's dispose scope: it owns (and later
        // disposes) it.
        using (var scope = NewDisposeScope())
            x0 = ConvertModelOutput(modelOutput, sample).DetachFromDisposeScope();
        _modelOutputs[0]?.Dispose();
        for (int k = 0; k < SolverOrder - 1; k++) _modelOutputs[k] = _modelOutputs[k + 1];
        _modelOutputs[^1] = x0;

        Tensor prev;
        using (var scope = NewDisposeScope())
        {
            var sample32 = sample.to_type(ScalarType.Float32);
            var next = SolverOrder == 1 || _lowerOrderNums < 1 || lowerOrderFinal
                ? FirstOrderUpdate(x0, sample32)
                : SecondOrderUpdate(_modelOutputs[^1]!, _modelOutputs[^2]!, sample32);
            prev = next.to_type(modelOutput.dtype).MoveToOuterDisposeScope();
        }
        if (_lowerOrderNums < SolverOrder) _lowerOrderNums++;
        _stepIndex = i + 1;
        return prev;
    }

    /// <summary>DPM-Solver++ first order (= DDIM in x0 form): x_t = (sigma_t / sigma_s) x - alpha_t (e^{-h} - 1) x0.</summary>
    private Tensor FirstOrderUpdate(Tensor x0, Tensor sample)
    {
        int i = _stepIndex!.Value;
        var t = AlphaSigma(_sigmas[i + 1]);
        var s = AlphaSigma(_sigmas[i]);
        double h = Lambda(t) - Lambda(s);
        return (t.Sigma / s.Sigma) * sample - (t.Alpha * (Math.Exp(-h) - 1.0)) * x0;
    }

    /// <summary>DPM-Solver++(2M): the first-order step plus a correction from the divided difference of the last two
    /// x0 predictions (midpoint or Heun form).</summary>
    private Tensor SecondOrderUpdate(Tensor m0, Tensor m1, Tensor sample)
    {
        int i = _stepIndex!.Value;
        var t = AlphaSigma(_sigmas[i + 1]);
        var s0 = AlphaSigma(_sigmas[i]);
        var s1 = AlphaSigma(_sigmas[i - 1]);
        double lambdaT = Lambda(t), lambdaS0 = Lambda(s0), lambdaS1 = Lambda(s1);
        double h = lambdaT - lambdaS0, h0 = lambdaS0 - lambdaS1;
        double r0 = h0 / h;
        var d0 = m0;
        var d1 = (1.0 / r0) * (m0 - m1);
        double expm = Math.Exp(-h) - 1.0;
        return SolverType == "midpoint"
            ? (t.Sigma / s0.Sigma) * sample - (t.Alpha * expm) * d0 - 0.5 * (t.Alpha * expm) * d1
            : (t.Sigma / s0.Sigma) * sample - (t.Alpha * expm) * d0 + (t.Alpha * (expm / h + 1.0)) * d1;
    }

    public override Tensor AddNoise(Tensor originalSamples, Tensor noise, long timestep)
    {
        if (!HasInferenceSchedule) throw new InvalidOperationException("DPM-Solver++: call SetTimesteps before AddNoise");
        var (alpha, sigma) = AlphaSigma(_sigmas[IndexForTimestep(timestep)]);
        return alpha * originalSamples + sigma * noise;
    }
}
