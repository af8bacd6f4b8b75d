using BatchRender.Model.Pipelines;
using BatchRender.Model.Schedulers;
using TorchSharp;
using static TorchSharp.torch;

namespace BatchRender.Model.Tests.Schedulers;

public class SchedulerTests
{
    // HunyuanDiT-v1.2-Diffusers scheduler/scheduler_config.json (HUNYUAN.md 4.6), with an unknown key added.
    private const string HunyuanConfigJson = """
        {
          "_class_name": "DDPMScheduler",
          "_diffusers_version": "0.29.0",
          "beta_end": 0.018,
          "beta_schedule": "scaled_linear",
          "beta_start": 0.00085,
          "clip_sample": false,
          "clip_sample_range": 1.0,
          "dynamic_thresholding_ratio": 0.995,
          "num_train_timesteps": 1000,
          "prediction_type": "v_prediction",
          "rescale_betas_zero_snr": false,
          "sample_max_value": 1.0,
          "set_alpha_to_one": false,
          "skip_prk_steps": true,
          "steps_offset": 1,
          "thresholding": false,
          "timestep_spacing": "leading",
          "trained_betas": null,
          "variance_type": "fixed_small",
          "some_future_key": {"nested": [1, 2]}
        }
        """;

    private static SchedulerConfig Hunyuan => SchedulerConfig.Parse(HunyuanConfigJson);

    // ---- reference formulas, in float64, written from diffusers' definitions ----

    private static double[] ReferenceBetas(string schedule, double start, double end, int T = 1000) => schedule switch
    {
        "linear" => Enumerable.Range(0, T).Select(i => start + (end - start) * i / (T - 1)).ToArray(),
        "scaled_linear" => Enumerable.Range(0, T)
            .Select(i => Math.Pow(Math.Sqrt(start) + (Math.Sqrt(end) - Math.Sqrt(start)) * i / (T - 1), 2)).ToArray(),
        "squaredcos_cap_v2" => Enumerable.Range(0, T).Select(i =>
        {
            static double F(double t) => Math.Pow(Math.Cos((t + 0.008) / 1.008 * Math.PI / 2), 2);
            return Math.Min(1 - F((i + 1.0) / T) / F((double)i / T), 0.999);
        }).ToArray(),
        _ => throw new ArgumentException(schedule),
    };

    private static double[] CumProd(double[] betas)
    {
        var a = new double[betas.Length];
        double p = 1;
        for (int i = 0; i < betas.Length; i++) a[i] = p *= 1 - betas[i];
        return a;
    }

    private static void AssertClose(double expected, double actual, double rtol, string what)
    {
        double tol = rtol * Math.Max(Math.Abs(expected), 1e-12);
        Assert.True(Math.Abs(expected - actual) <= tol, $"{what}: expected {expected:R}, got {actual:R}");
    }

    private static void AssertTensorClose(Tensor expected, Tensor actual, double rtol = 1e-5, double atol = 1e-6)
    {
        Assert.Equal(expected.shape, actual.shape);
        var diff = (expected.to_type(ScalarType.Float64) - actual.to_type(ScalarType.Float64)).abs();
        var bound = atol + rtol * expected.to_type(ScalarType.Float64).abs();
        var worst = (diff - bound).max().item<double>();
        Assert.True(worst <= 0, $"tensors differ: max |diff| = {diff.max().item<double>():G6}");
    }

    private static Tensor Randn(long seed, params long[] shape) => randn(shape, generator: new Generator((ulong)seed));

    // ---- config ----

    [Fact]
    public void Config_reads_hunyuan_scheduler_json_and_ignores_unknown_keys()
    {
        var c = Hunyuan;
        Assert.Equal("DDPMScheduler", c.ClassName);
        Assert.Equal(0.018, c.BetaEnd);
        Assert.Equal("scaled_linear", c.BetaSchedule);
        Assert.Equal("v_prediction", c.PredictionType);
        Assert.Equal(1, c.StepsOffset);
        Assert.False(c.SetAlphaToOne);
        Assert.Null(c.TrainedBetas);
        Assert.Null(c.SolverOrder);
    }

    [Fact]
    public void Config_accepts_python_infinity_literal()
    {
        var c = SchedulerConfig.Parse("""{"lambda_min_clipped": -Infinity, "solver_order": 2}""");
        Assert.Equal(double.NegativeInfinity, c.LambdaMinClipped);
    }

    [Fact]
    public void Config_errors_name_the_file_and_field()
    {
        var e = Assert.Throws<InvalidDataException>(() => SchedulerConfig.Parse("""{"num_train_timesteps": "many"}""", "model/scheduler/scheduler_config.json"));
        Assert.Contains("model/scheduler/scheduler_config.json", e.Message);
        Assert.Contains("num_train_timesteps", e.Message);
        var missing = Path.Combine(Path.GetTempPath(), Guid.NewGuid().ToString("N"));
        Assert.Throws<FileNotFoundException>(() => SchedulerConfig.Load(missing));
    }

    [Fact]
    public void Unsupported_options_are_rejected_with_the_key_name()
    {
        var e1 = Assert.Throws<ArgumentException>(() => new DdpmScheduler(Hunyuan with { BetaSchedule = "sigmoid" }));
        Assert.Contains("beta_schedule", e1.Message);
        var e2 = Assert.Throws<ArgumentException>(() => new DpmSolverMultistepScheduler(Hunyuan with { UseKarrasSigmas = true }));
        Assert.Contains("use_karras_sigmas", e2.Message);
        var e3 = Assert.Throws<ArgumentException>(() => new DdimScheduler(Hunyuan with { PredictionType = "flow" }));
        Assert.Contains("prediction_type", e3.Message);
        var e4 = Assert.Throws<ArgumentException>(() => new DdimScheduler(Hunyuan with { TimestepSpacing = "karras" }).SetTimesteps(10));
        Assert.Contains("timestep_spacing", e4.Message);
        Assert.Throws<ArgumentOutOfRangeException>(() => new DdpmScheduler(Hunyuan).SetTimesteps(1001));
    }

    [Fact]
    public void Factory_builds_each_sampler_from_one_config()
    {
        Assert.IsType<DdpmScheduler>(SchedulerFactory.Create(SamplerKind.Ddpm, Hunyuan));
        Assert.IsType<DdimScheduler>(SchedulerFactory.Create(SamplerKind.Ddim, Hunyuan));
        var dpm = SchedulerFactory.Create(SamplerKind.DpmSolverPlusPlus, Hunyuan);
        Assert.IsType<DpmSolverMultistepScheduler>(dpm);
        Assert.Equal(PredictionType.VPrediction, dpm.PredictionType);
        Assert.Equal(1.0, dpm.InitNoiseSigma);
    }

    // ---- tables ----

    [Theory]
    [InlineData("linear", 0.0001, 0.02)]
    [InlineData("scaled_linear", 0.00085, 0.018)]
    [InlineData("scaled_linear", 0.00085, 0.03)]
    [InlineData("squaredcos_cap_v2", 0.0001, 0.02)]
    public void Betas_and_alphas_cumprod_match_the_formulas(string schedule, double start, double end)
    {
        var s = NoiseSchedule.FromConfig(new SchedulerConfig { BetaSchedule = schedule, BetaStart = start, BetaEnd = end });
        var betas = ReferenceBetas(schedule, start, end);
        var abar = CumProd(betas);
        Assert.Equal(1000, s.Betas.Count);
        for (int t = 0; t < 1000; t++)
        {
            AssertClose(betas[t], s.Betas[t], 2e-6, $"beta[{t}]");
            AssertClose(abar[t], s.AlphasCumprod[t], 2e-4, $"alphas_cumprod[{t}]"); // float32 cumprod over 1000 terms
        }
        // spot values: float32 tables, so an exact double compare is meaningless; 7 significant digits are not.
        if (schedule == "scaled_linear" && end == 0.018)
        {
            AssertClose(0.99915, s.AlphasCumprod[0], 1e-7, "abar_0");
            AssertClose(abar[999], s.AlphasCumprod[999], 1e-4, "abar_999");
        }
    }

    [Fact]
    public void Zero_terminal_snr_rescaling_ends_at_zero_and_keeps_the_first_value()
    {
        var plain = NoiseSchedule.FromConfig(Hunyuan);
        var zsnr = NoiseSchedule.FromConfig(Hunyuan with { RescaleBetasZeroSnr = true });
        Assert.Equal(0.0, zsnr.AlphasCumprod[999], 1e-7);
        AssertClose(plain.AlphasCumprod[0], zsnr.AlphasCumprod[0], 1e-5, "abar_0");
    }

    // ---- timesteps ----

    [Theory]
    [InlineData(50, 981L, 961L, 1L)]
    [InlineData(25, 961L, 921L, 1L)]
    [InlineData(100, 991L, 981L, 1L)]
    public void Hunyuan_leading_spacing_with_offset(int steps, long first, long second, long last)
    {
        foreach (var kind in new[] { SamplerKind.Ddpm, SamplerKind.Ddim })
        {
            var s = SchedulerFactory.Create(kind, Hunyuan);
            s.SetTimesteps(steps);
            Assert.Equal(steps, s.Timesteps.Count);
            Assert.Equal(first, s.Timesteps[0]);
            Assert.Equal(second, s.Timesteps[1]);
            Assert.Equal(last, s.Timesteps[^1]);
            int ratio = 1000 / steps;
            Assert.Equal(Enumerable.Range(0, steps).Select(i => (long)((steps - 1 - i) * ratio + 1)), s.Timesteps);
        }
    }

    [Fact]
    public void Trailing_and_linspace_spacing_match_numpy()
    {
        var ddim = new DdimScheduler(Hunyuan with { TimestepSpacing = "trailing" });
        ddim.SetTimesteps(10);
        Assert.Equal(new long[] { 999, 899, 799, 699, 599, 499, 399, 299, 199, 99 }, ddim.Timesteps);
        ddim.SetTimesteps(3); // 1000/3 is not exact: np.arange(1000, 0, -333.33).round() - 1
        Assert.Equal(new long[] { 999, 666, 332 }, ddim.Timesteps);

        var lin = new DdpmScheduler(Hunyuan with { TimestepSpacing = "linspace" });
        lin.SetTimesteps(10);
        Assert.Equal(new long[] { 999, 888, 777, 666, 555, 444, 333, 222, 111, 0 }, lin.Timesteps);
        lin.SetTimesteps(4); // 0, 333, 666, 999
        Assert.Equal(new long[] { 999, 666, 333, 0 }, lin.Timesteps);
        lin.SetTimesteps(8); // 0, 142.71, 285.43, 428.14, 570.86, 713.57, 856.29, 999 -> rounded
        Assert.Equal(new long[] { 999, 856, 714, 571, 428, 285, 143, 0 }, lin.Timesteps);
    }

    [Fact]
    public void DpmSolver_spacings_space_steps_plus_one_points_and_drop_the_last()
    {
        var cfg = Hunyuan with { TimestepSpacing = null, StepsOffset = null }; // DPM default: linspace
        var dpm = new DpmSolverMultistepScheduler(cfg);
        dpm.SetTimesteps(10); // np.linspace(0, 999, 11) = 0, 99.9, ..., 599.4, ... -> rounded, reversed, last dropped
        Assert.Equal(new long[] { 999, 899, 799, 699, 599, 500, 400, 300, 200, 100 }, dpm.Timesteps);

        var leading = new DpmSolverMultistepScheduler(Hunyuan); // leading, offset 1: ratio 1000 // 11 = 90
        leading.SetTimesteps(10);
        Assert.Equal(new long[] { 901, 811, 721, 631, 541, 451, 361, 271, 181, 91 }, leading.Timesteps);

        var trailing = new DpmSolverMultistepScheduler(Hunyuan with { TimestepSpacing = "trailing" });
        trailing.SetTimesteps(10);
        Assert.Equal(new long[] { 999, 899, 799, 699, 599, 499, 399, 299, 199, 99 }, trailing.Timesteps);
    }

    [Fact]
    public void DpmSolver_sigmas_follow_alphas_cumprod_and_end_at_zero_or_sigma_min()
    {
        var dpm = new DpmSolverMultistepScheduler(Hunyuan);
        dpm.SetTimesteps(20);
        var abar = CumProd(ReferenceBetas("scaled_linear", 0.00085, 0.018));
        Assert.Equal(21, dpm.Sigmas.Count);
        for (int i = 0; i < 20; i++)
        {
            long t = dpm.Timesteps[i];
            AssertClose(Math.Sqrt((1 - abar[t]) / abar[t]), dpm.Sigmas[i], 2e-4, $"sigma at t={t}");
        }
        Assert.Equal(0.0, dpm.Sigmas[20]);

        var sigmaMin = new DpmSolverMultistepScheduler(Hunyuan with { FinalSigmasType = "sigma_min" });
        sigmaMin.SetTimesteps(20);
        AssertClose(Math.Sqrt((1 - abar[0]) / abar[0]), sigmaMin.Sigmas[20], 1e-4, "sigma_min"); // float32 1 - beta_0
    }

    [Fact]
    public void DpmSolver_lambda_min_clipped_shortens_the_schedule()
    {
        // squaredcos_cap_v2 with lambda_min_clipped -5.1 (the diffusers setting for cosine schedules).
        var cfg = new SchedulerConfig { BetaSchedule = "squaredcos_cap_v2", LambdaMinClipped = -5.1 };
        var dpm = new DpmSolverMultistepScheduler(cfg);
        dpm.SetTimesteps(10);
        var abar = CumProd(ReferenceBetas("squaredcos_cap_v2", 0, 0));
        int clipped = abar.Count(a => 0.5 * Math.Log(a / (1 - a)) < -5.1);
        Assert.True(clipped > 0);
        Assert.True(dpm.Timesteps[0] < 1000 - clipped);
        Assert.Equal(1000 - clipped - 1, dpm.Timesteps[0]); // np.linspace(0, last - 1, 11) reversed starts at last - 1
    }

    // ---- single steps against hand-computed values ----

    [Theory]
    [InlineData("v_prediction")]
    [InlineData("epsilon")]
    public void Ddpm_step_matches_the_posterior_formula(string prediction)
    {
        var s = new DdpmScheduler(Hunyuan with { PredictionType = prediction });
        s.SetTimesteps(50);
        var abar = CumProd(ReferenceBetas("scaled_linear", 0.00085, 0.018));
        var x = Randn(1, 2, 4, 8, 8);
        var m = Randn(2, 2, 4, 8, 8);

        var actual = s.Step(m, 981, x, new Generator(7));

        double a = abar[981], ap = abar[961], beta = 1 - a / ap;
        var x0 = prediction == "epsilon" ? (x - Math.Sqrt(1 - a) * m) / Math.Sqrt(a) : Math.Sqrt(a) * x - Math.Sqrt(1 - a) * m;
        var mean = (Math.Sqrt(ap) * beta / (1 - a)) * x0 + (Math.Sqrt(a / ap) * (1 - ap) / (1 - a)) * x;
        var noise = Randn(7, 2, 4, 8, 8);
        var expected = mean + Math.Sqrt((1 - ap) / (1 - a) * beta) * noise;
        AssertTensorClose(expected, actual, 1e-4, 1e-5);
    }

    [Fact]
    public void Ddpm_last_step_uses_abar_one_and_is_deterministic_across_equal_seeds()
    {
        var s = new DdpmScheduler(Hunyuan);
        s.SetTimesteps(50);
        var x = Randn(1, 1, 4, 4, 4);
        var m = Randn(2, 1, 4, 4, 4);
        var r1 = s.Step(m, 1, x, new Generator(3));
        var r2 = s.Step(m, 1, x, new Generator(3));
        Assert.True(r1.equal(r2).all().item<bool>());
        // t = 1 -> t' = -1: abar' = 1, beta = 1 - abar_1, x0 coefficient 1, sample coefficient 0; noise std ~ 0.
        double a = CumProd(ReferenceBetas("scaled_linear", 0.00085, 0.018))[1];
        var x0 = Math.Sqrt(a) * x - Math.Sqrt(1 - a) * m;
        AssertTensorClose(x0, r1, 1e-5, 1e-6);
    }

    [Theory]
    [InlineData("v_prediction", false)]
    [InlineData("epsilon", true)]
    public void Ddim_step_matches_the_eta_zero_update(string prediction, bool setAlphaToOne)
    {
        var s = new DdimScheduler(Hunyuan with { PredictionType = prediction, SetAlphaToOne = setAlphaToOne });
        s.SetTimesteps(20); // leading + 1: 951, 901, ..., 1
        Assert.Equal(951, s.Timesteps[0]);
        var abar = CumProd(ReferenceBetas("scaled_linear", 0.00085, 0.018));
        var x = Randn(3, 1, 4, 8, 8);
        var m = Randn(4, 1, 4, 8, 8);

        foreach (var (t, tPrev) in new[] { (951L, 901L), (1L, -49L) })
        {
            double a = abar[t], ap = tPrev >= 0 ? abar[tPrev] : (setAlphaToOne ? 1.0 : abar[0]);
            Tensor x0, eps;
            if (prediction == "epsilon") { x0 = (x - Math.Sqrt(1 - a) * m) / Math.Sqrt(a); eps = m; }
            else { x0 = Math.Sqrt(a) * x - Math.Sqrt(1 - a) * m; eps = Math.Sqrt(a) * m + Math.Sqrt(1 - a) * x; }
            var expected = Math.Sqrt(ap) * x0 + Math.Sqrt(1 - ap) * eps;
            AssertTensorClose(expected, s.Step(m, t, x), 1e-4, 1e-5);
        }
    }

    [Theory]
    [InlineData("v_prediction")]
    [InlineData("epsilon")]
    public void DpmSolver_first_then_second_order_steps_match_the_formulas(string prediction)
    {
        var s = new DpmSolverMultistepScheduler(Hunyuan with { PredictionType = prediction });
        s.SetTimesteps(10);
        var abar = CumProd(ReferenceBetas("scaled_linear", 0.00085, 0.018));
        double Sig(int i) => i < 10 ? Math.Sqrt((1 - abar[s.Timesteps[i]]) / abar[s.Timesteps[i]]) : 0;
        (double al, double si) AS(double sigma) { double al = 1 / Math.Sqrt(sigma * sigma + 1); return (al, sigma * al); }
        double Lam((double al, double si) p) => Math.Log(p.al) - Math.Log(p.si);
        Tensor X0(Tensor m, Tensor x, int i)
        {
            var (al, si) = AS(Sig(i));
            return prediction == "epsilon" ? (x - si * m) / al : al * x - si * m;
        }

        var x = Randn(5, 1, 4, 8, 8);
        var m1 = Randn(6, 1, 4, 8, 8);
        var m2 = Randn(7, 1, 4, 8, 8);

        // step 0: first order
        var d0 = X0(m1, x, 0);
        var (t1, s0) = (AS(Sig(1)), AS(Sig(0)));
        double h = Lam(t1) - Lam(s0);
        var expected1 = (t1.si / s0.si) * x - (t1.al * (Math.Exp(-h) - 1)) * d0;
        var x1 = s.Step(m1, s.Timesteps[0], x);
        AssertTensorClose(expected1, x1, 1e-4, 1e-5);

        // step 1: second order (midpoint) with the previous x0
        var d1x0 = X0(m2, x1, 1);
        var (t2, s1) = (AS(Sig(2)), AS(Sig(1)));
        double h2 = Lam(t2) - Lam(s1), h1 = Lam(s1) - Lam(s0);
        var D1 = (h2 / h1) * (d1x0 - d0);
        var expected2 = (t2.si / s1.si) * x1 - (t2.al * (Math.Exp(-h2) - 1)) * d1x0 - 0.5 * (t2.al * (Math.Exp(-h2) - 1)) * D1;
        var x2 = s.Step(m2, s.Timesteps[1], x1);
        AssertTensorClose(expected2, x2, 1e-4, 1e-5);
        Assert.Equal(2, s.StepIndex);
    }

    [Fact]
    public void DpmSolver_SetTimesteps_resets_the_multistep_state()
    {
        var s = new DpmSolverMultistepScheduler(Hunyuan);
        var x = Randn(8, 1, 4, 4, 4);
        var m1 = Randn(9, 1, 4, 4, 4);
        var m2 = Randn(10, 1, 4, 4, 4);
        s.SetTimesteps(10);
        var first = s.Step(m1, s.Timesteps[0], x);
        var second = s.Step(m2, s.Timesteps[1], first);

        s.SetTimesteps(10);
        Assert.Null(s.StepIndex);
        var firstAgain = s.Step(m1, s.Timesteps[0], x);
        Assert.True(first.equal(firstAgain).all().item<bool>());
        // Starting at step 1 without history must be first order, i.e. different from the 2M step above.
        s.SetTimesteps(10);
        var cold = s.Step(m2, s.Timesteps[1], first);
        Assert.False(cold.allclose(second, 1e-6, 1e-7));
    }

    [Theory]
    [InlineData(SamplerKind.Ddim, "epsilon")]
    [InlineData(SamplerKind.Ddim, "v_prediction")]
    [InlineData(SamplerKind.DpmSolverPlusPlus, "epsilon")]
    [InlineData(SamplerKind.DpmSolverPlusPlus, "v_prediction")]
    public void Deterministic_samplers_recover_x0_from_an_oracle_model(SamplerKind kind, string prediction)
    {
        // An oracle that knows x0 predicts the exact noise (or velocity) at every t: DDIM with set_alpha_to_one and
        // DPM-Solver++ (final sigma 0) must then land on x0 itself.
        var s = SchedulerFactory.Create(kind, Hunyuan with { PredictionType = prediction, SetAlphaToOne = true });
        s.SetTimesteps(12);
        var x0 = Randn(11, 1, 4, 8, 8);
        var noise = Randn(12, 1, 4, 8, 8);
        var x = s.AddNoise(x0, noise, s.Timesteps[0]);
        var abar = s.Schedule.AlphasCumprod;
        foreach (var t in s.Timesteps)
        {
            double a = abar[(int)t];
            var eps = (x - Math.Sqrt(a) * x0) / Math.Sqrt(1 - a);
            var output = prediction == "epsilon" ? eps : Math.Sqrt(a) * eps - Math.Sqrt(1 - a) * x0;
            x = s.Step(output, t, x);
        }
        AssertTensorClose(x0, x, 1e-3, 1e-4);
    }

    [Fact]
    public void AddNoise_is_the_forward_process()
    {
        var abar = CumProd(ReferenceBetas("scaled_linear", 0.00085, 0.018));
        var x0 = Randn(13, 2, 4, 4, 4);
        var n = Randn(14, 2, 4, 4, 4);
        var expected = Math.Sqrt(abar[501]) * x0 + Math.Sqrt(1 - abar[501]) * n;
        foreach (var kind in Enum.GetValues<SamplerKind>())
        {
            var s = SchedulerFactory.Create(kind, Hunyuan with { TimestepSpacing = "trailing" });
            s.SetTimesteps(2); // trailing: 999, 499 -> use a timestep of the schedule
            var t = kind == SamplerKind.DpmSolverPlusPlus ? s.Timesteps[1] : 501;
            var e = kind == SamplerKind.DpmSolverPlusPlus
                ? Math.Sqrt(abar[t]) * x0 + Math.Sqrt(1 - abar[t]) * n
                : expected;
            AssertTensorClose(e, s.AddNoise(x0, n, t), 1e-4, 1e-5);
        }
    }
}
