using BatchRender.Model.Pipelines;
using TorchSharp;
using static TorchSharp.torch;

namespace BatchRender.Model.Schedulers;

/// <summary>Configuration and helpers shared by the samplers: the noise schedule, prediction type, x0 clipping/thresholding.</summary>
public abstract class SchedulerBase : IScheduler
{
    protected SchedulerBase(SchedulerConfig config, bool defaultClipSample)
    {
        Config = config;
        Schedule = NoiseSchedule.FromConfig(config);
        PredictionType = ParsePredictionType(config.PredictionType ?? "epsilon");
        ClipSample = config.ClipSample ?? defaultClipSample;
        ClipSampleRange = config.ClipSampleRange ?? 1.0;
        Thresholding = config.Thresholding ?? false;
        DynamicThresholdingRatio = config.DynamicThresholdingRatio ?? 0.995;
        SampleMaxValue = config.SampleMaxValue ?? 1.0;
    }

    public SchedulerConfig Config { get; }
    public abstract SamplerKind Kind { get; }
    public NoiseSchedule Schedule { get; }
    public PredictionType PredictionType { get; }
    public bool ClipSample { get; }
    public double ClipSampleRange { get; }
    public bool Thresholding { get; }
    public double DynamicThresholdingRatio { get; }
    public double SampleMaxValue { get; }
    public virtual double InitNoiseSigma => 1.0;
    public IReadOnlyList<long> Timesteps => _timesteps;
    /// <summary>True once <see cref="SetTimesteps"/> has chosen an inference schedule.</summary>
    protected bool HasInferenceSchedule { get; private set; }

    private long[] _timesteps = [];

    public abstract void SetTimesteps(int steps);
    public virtual Tensor ScaleModelInput(Tensor sample, long timestep) => sample;
    public abstract Tensor Step(Tensor modelOutput, long timestep, Tensor sample, Generator? generator = null);
    public abstract Tensor AddNoise(Tensor originalSamples, Tensor noise, long timestep);

    protected void UseTimesteps(long[] timesteps, bool inferenceSchedule = true)
    {
        _timesteps = timesteps;
        HasInferenceSchedule = inferenceSchedule;
    }

    protected int IndexOf(long timestep)
    {
        int i = Array.IndexOf(_timesteps, timestep);
        if (i < 0) throw new ArgumentException($"timestep {timestep} is not in the current schedule ({_timesteps.Length} steps)", nameof(timestep));
        return i;
    }

    protected double AlphaCumprod(long t)
    {
        if (t < 0 || t >= Schedule.NumTrainTimesteps)
            throw new ArgumentOutOfRangeException(nameof(t), t, $"timestep outside 0..{Schedule.NumTrainTimesteps - 1}");
        return Schedule.AlphasCumprod[(int)t];
    }

    /// <summary>sqrt(abar) x0 + sqrt(1 - abar) noise, the DDPM/DDIM forward process.</summary>
    protected Tensor AddNoiseAt(Tensor originalSamples, Tensor noise, double alphaCumprod) =>
        Math.Sqrt(alphaCumprod) * originalSamples + Math.Sqrt(1 - alphaCumprod) * noise;

    /// <summary>Applies the config's dynamic thresholding or clipping to a predicted x0.</summary>
    protected Tensor ClipOrThreshold(Tensor x0)
    {
        if (Thresholding) return ThresholdSample(x0);
        if (ClipSample) return x0.clamp(-ClipSampleRange, ClipSampleRange);
        return x0;
    }

    /// <summary>Dynamic thresholding (Imagen, arXiv 2205.11487): per sample, clamp to the ratio-quantile s of |x0|
    /// (s clamped to [1, sample_max_value]) and divide by s.</summary>
    protected Tensor ThresholdSample(Tensor sample)
    {
        using var scope = NewDisposeScope();
        var dtype = sample.dtype;
        var shape = sample.shape;
        var flat = sample.to_type(dtype == ScalarType.Float64 ? ScalarType.Float64 : ScalarType.Float32).reshape(shape[0], -1);
        var q = tensor(DynamicThresholdingRatio, flat.dtype, flat.device);
        var s = flat.abs().quantile(q, 1, false).clamp(1.0, SampleMaxValue).unsqueeze(1);
        var result = minimum(maximum(flat, -s), s) / s;
        return result.reshape(shape).to_type(dtype).MoveToOuterDisposeScope();
    }

    /// <summary>Gaussian noise shaped like <paramref name="like"/>, drawn on the generator's device (as diffusers'
    /// randn_tensor does, so a CPU generator gives the same noise whatever the model device) and moved.</summary>
    protected static Tensor Noise(Tensor like, ScalarType dtype, Generator? generator)
    {
        var device = generator?.device ?? like.device;
        var noise = randn(like.shape, dtype, device, generator: generator);
        return device.ToString() == like.device.ToString() ? noise : noise.to(like.device);
    }

    public static PredictionType ParsePredictionType(string s) => s switch
    {
        "epsilon" => PredictionType.Epsilon,
        "v_prediction" => PredictionType.VPrediction,
        "sample" => PredictionType.Sample,
        _ => throw new ArgumentException($"scheduler config: prediction_type '{s}' is not supported (expected epsilon, v_prediction or sample)"),
    };
}
