using TorchSharp;
using static TorchSharp.torch;

namespace BatchRender.Model.Schedulers;

/// <summary>
/// The training noise schedule shared by every sampler: betas and their cumulative alpha product.
/// Computed with the same float32 torch operations as diffusers (torch.linspace, **2, cumprod), so the tables equal
/// diffusers' to float32 rounding (the cumulative product may differ by an ulp between PyTorch versions); they are held
/// as double for the scalar step arithmetic.
/// </summary>
public sealed class NoiseSchedule
{
    public int NumTrainTimesteps { get; }
    public IReadOnlyList<double> Betas { get; }
    /// <summary>alphas_cumprod[t] = prod_{i &lt;= t} (1 - beta_i), "abar_t".</summary>
    public IReadOnlyList<double> AlphasCumprod { get; }

    private NoiseSchedule(int numTrainTimesteps, double[] betas, double[] alphasCumprod)
    {
        NumTrainTimesteps = numTrainTimesteps;
        Betas = betas;
        AlphasCumprod = alphasCumprod;
    }

    public static NoiseSchedule FromConfig(SchedulerConfig config)
    {
        int T = config.NumTrainTimesteps ?? 1000;
        if (T < 2) throw new ArgumentException($"scheduler config: num_train_timesteps must be at least 2, got {T}");
        double betaStart = config.BetaStart ?? 0.0001, betaEnd = config.BetaEnd ?? 0.02;
        string schedule = config.BetaSchedule ?? "linear";

        using var scope = NewDisposeScope();
        Tensor betas;
        if (config.TrainedBetas is { } trained)
        {
            if (trained.Length != T)
                throw new ArgumentException($"scheduler config: trained_betas has {trained.Length} values, num_train_timesteps is {T}");
            betas = tensor(trained, ScalarType.Float32);
        }
        else
        {
            betas = schedule switch
            {
                "linear" => linspace(betaStart, betaEnd, T, ScalarType.Float32),
                "scaled_linear" => linspace(Math.Sqrt(betaStart), Math.Sqrt(betaEnd), T, ScalarType.Float32).pow(2),
                "squaredcos_cap_v2" => tensor(CosineBetas(T), ScalarType.Float32),
                _ => throw new ArgumentException(
                    $"scheduler config: beta_schedule '{schedule}' is not supported (expected linear, scaled_linear or squaredcos_cap_v2)"),
            };
        }
        if (config.RescaleBetasZeroSnr == true) betas = RescaleZeroTerminalSnr(betas);

        var alphasCumprod = cumprod(1.0f - betas, 0);
        return new NoiseSchedule(T, ToDoubles(betas), ToDoubles(alphasCumprod));
    }

    /// <summary>diffusers' betas_for_alpha_bar with the Glide cosine alpha_bar, computed in float64 like the Python loop.</summary>
    private static double[] CosineBetas(int T, double maxBeta = 0.999)
    {
        static double AlphaBar(double t) => Math.Pow(Math.Cos((t + 0.008) / 1.008 * Math.PI / 2), 2);
        var betas = new double[T];
        for (int i = 0; i < T; i++)
            betas[i] = Math.Min(1 - AlphaBar((i + 1) / (double)T) / AlphaBar(i / (double)T), maxBeta);
        return betas;
    }

    /// <summary>Zero terminal SNR rescaling (Lin et al. 2023, Algorithm 1), as diffusers' rescale_zero_terminal_snr.</summary>
    private static Tensor RescaleZeroTerminalSnr(Tensor betas)
    {
        var sqrtAbar = cumprod(1.0f - betas, 0).sqrt();
        var first = sqrtAbar[0].clone();
        var last = sqrtAbar[-1].clone();
        sqrtAbar = (sqrtAbar - last) * (first / (first - last));
        var abar = sqrtAbar.pow(2);
        var alphas = cat([abar[..1], abar[1..] / abar[..^1]], 0);
        return 1.0f - alphas;
    }

    private static double[] ToDoubles(Tensor t) =>
        t.to_type(ScalarType.Float32).data<float>().Select(v => (double)v).ToArray();
}
