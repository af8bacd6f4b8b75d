using BatchRender.Model.Pipelines;
using TorchSharp;
using static TorchSharp.torch;

namespace BatchRender.Model.Schedulers;

/// <summary>What the network predicts (diffusers' prediction_type).</summary>
public enum PredictionType { Epsilon, VPrediction, Sample }

/// <summary>
/// A diffusion sampler with diffusers' scheduler semantics: <see cref="SetTimesteps"/> once per render (it also resets
/// any multistep state), then for each t in <see cref="Timesteps"/>: model output = net(ScaleModelInput(x, t), t);
/// x = Step(model output, t, x, generator).
/// </summary>
public interface IScheduler
{
    SamplerKind Kind { get; }
    NoiseSchedule Schedule { get; }
    PredictionType PredictionType { get; }

    /// <summary>Standard deviation of the initial noise (1.0 for all three samplers here).</summary>
    double InitNoiseSigma { get; }

    /// <summary>Descending integer timesteps chosen by the last <see cref="SetTimesteps"/> call.</summary>
    IReadOnlyList<long> Timesteps { get; }

    void SetTimesteps(int steps);

    /// <summary>Input scaling the network expects at timestep t (identity for DDPM, DDIM and DPM-Solver++).</summary>
    Tensor ScaleModelInput(Tensor sample, long timestep);

    /// <summary>One reverse step from <paramref name="timestep"/> to the next timestep of the list. Stochastic samplers
    /// draw their noise from <paramref name="generator"/> (null: torch's default generator).</summary>
    Tensor Step(Tensor modelOutput, long timestep, Tensor sample, Generator? generator = null);

    /// <summary>Forward diffusion q(x_t | x_0): the clean sample noised to the level of <paramref name="timestep"/>.</summary>
    Tensor AddNoise(Tensor originalSamples, Tensor noise, long timestep);
}
