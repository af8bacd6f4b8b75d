namespace BatchRender.Training.Training;

/// <summary>Linear warm-up to the peak, then cosine decay to a floor at the last step; optionally with one warm restart
/// (SGDR, Loshchilov &amp; Hutter 2017).</summary>
public static class LearningRateSchedule
{
    /// <summary>Peak of the cosine after a warm restart, as a fraction of the first one's: the annealed weights are
    /// refined, not thrown back to the start.</summary>
    public const double RestartPeakFraction = 0.5;

    public static double At(int step, int totalSteps, double peak, int warmupSteps, double minFraction)
    {
        if (warmupSteps > 0 && step < warmupSteps) return peak * (step + 1) / warmupSteps;
        int decaySteps = Math.Max(1, totalSteps - warmupSteps);
        double progress = Math.Clamp((step - warmupSteps) / (double)decaySteps, 0, 1);
        double cosine = 0.5 * (1 + Math.Cos(Math.PI * progress));
        return peak * (minFraction + (1 - minFraction) * cosine);
    }

    /// <summary>The schedule with a warm restart at <paramref name="restartAt"/> (null or 0: none): a full schedule over
    /// the first <paramref name="restartAt"/> steps, then another warm-up and cosine, at
    /// <see cref="RestartPeakFraction"/> of the peak, over the rest.</summary>
    public static double At(int step, int totalSteps, int? restartAt, double peak, int warmupSteps, double minFraction)
        => restartAt is not { } restart || restart <= 0 ? At(step, totalSteps, peak, warmupSteps, minFraction)
            : step < restart ? At(step, restart, peak, warmupSteps, minFraction)
            : At(step - restart, totalSteps - restart, peak * RestartPeakFraction, warmupSteps, minFraction);
}
