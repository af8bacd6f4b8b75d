namespace BatchRender.Model.Schedulers;

/// <summary>
/// diffusers' timestep_spacing strategies (Table 2 of "Common Diffusion Noise Schedules and Sample Steps are Flawed",
/// arXiv 2305.08891), reproducing numpy's linspace/arange/round (half to even) so the integer timesteps are identical.
/// </summary>
public static class TimestepSpacing
{
    public const string Leading = "leading", Trailing = "trailing", Linspace = "linspace";

    /// <summary>The descending timesteps DDPM and DDIM use for <paramref name="steps"/> inference steps.</summary>
    public static long[] ForSteps(string spacing, int steps, int numTrainTimesteps, int stepsOffset)
    {
        ValidateSteps(steps, numTrainTimesteps);
        return spacing switch
        {
            // np.linspace(0, T - 1, n).round()[::-1]
            Linspace => Reverse(NumpyLinspace(0, numTrainTimesteps - 1, steps).Select(RoundToLong)),
            // (np.arange(0, n) * (T // n)).round()[::-1] + steps_offset
            Leading => Reverse(Enumerable.Range(0, steps).Select(i => (long)i * (numTrainTimesteps / steps) + stepsOffset)),
            // np.round(np.arange(T, 0, -T / n)) - 1
            Trailing => NumpyArange(numTrainTimesteps, 0, -(double)numTrainTimesteps / steps).Select(v => RoundToLong(v) - 1).ToArray(),
            _ => throw UnknownSpacing(spacing),
        };
    }

    /// <summary>
    /// DPM-Solver's variant: it spaces <paramref name="steps"/> + 1 points and drops the last one (so timestep 0 is never
    /// evaluated), up to <paramref name="lastTimestep"/> (T unless lambda_min_clipped cuts the schedule).
    /// </summary>
    public static long[] ForStepsDpmSolver(string spacing, int steps, int numTrainTimesteps, int lastTimestep, int stepsOffset)
    {
        ValidateSteps(steps, numTrainTimesteps);
        return spacing switch
        {
            // np.linspace(0, last - 1, n + 1).round()[::-1][:-1]
            Linspace => Reverse(NumpyLinspace(0, lastTimestep - 1, steps + 1).Select(RoundToLong))[..^1],
            // (np.arange(0, n + 1) * (last // (n + 1))).round()[::-1][:-1] + steps_offset
            Leading => Reverse(Enumerable.Range(0, steps + 1).Select(i => (long)i * (lastTimestep / (steps + 1)) + stepsOffset))[..^1],
            // np.arange(last, 0, -T / n).round() - 1
            Trailing => NumpyArange(lastTimestep, 0, -(double)numTrainTimesteps / steps).Select(v => RoundToLong(v) - 1).ToArray(),
            _ => throw UnknownSpacing(spacing),
        };
    }

    private static void ValidateSteps(int steps, int numTrainTimesteps)
    {
        if (steps < 1) throw new ArgumentOutOfRangeException(nameof(steps), steps, "the number of inference steps must be at least 1");
        if (steps > numTrainTimesteps)
            throw new ArgumentOutOfRangeException(nameof(steps), steps,
                $"the number of inference steps cannot exceed num_train_timesteps ({numTrainTimesteps})");
    }

    private static ArgumentException UnknownSpacing(string spacing) =>
        new($"scheduler config: timestep_spacing '{spacing}' is not supported (expected leading, trailing or linspace)");

    private static long[] Reverse(IEnumerable<long> values) => values.Reverse().ToArray();

    private static long RoundToLong(double v) => (long)Math.Round(v, MidpointRounding.ToEven);

    /// <summary>numpy.linspace(start, stop, num) with endpoint=True: i * step + start, the last value set to stop.</summary>
    private static double[] NumpyLinspace(double start, double stop, int num)
    {
        var y = new double[num];
        double step = (stop - start) / (num - 1);
        for (int i = 0; i < num; i++) y[i] = num > 1 ? i * step + start : start;
        if (num > 1) y[^1] = stop; // numpy with num = 1 returns [start]
        return y;
    }

    /// <summary>numpy.arange(start, stop, step) for floats: ceil((stop - start) / step) values start + i * step.</summary>
    private static IEnumerable<double> NumpyArange(double start, double stop, double step)
    {
        long n = Math.Max(0, (long)Math.Ceiling((stop - start) / step));
        for (long i = 0; i < n; i++) yield return start + i * step;
    }
}
