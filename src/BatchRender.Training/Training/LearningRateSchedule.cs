namespace BatchRender.Training.Training;

/// <summary>Linear warm-up to the peak, then cosine decay to a floor at the last step.</summary>
public static class LearningRateSchedule
{
    public static double At(int step, int totalSteps, double peak, int warmupSteps, double minFraction)
    {
        if (warmupSteps > 0 && step < warmupSteps) return peak * (step + 1) / warmupSteps;
        int decaySteps = Math.Max(1, totalSteps - warmupSteps);
        double progress = Math.Clamp((step - warmupSteps) / (double)decaySteps, 0, 1);
        double cosine = 0.5 * (1 + Math.Cos(Math.PI * progress));
        return peak * (minFraction + (1 - minFraction) * cosine);
    }
}
