using BatchRender.Training.Training;

namespace BatchRender.Training.Tests.Training;

public class LearningRateScheduleTests
{
    [Fact]
    public void Warm_up_then_cosine_to_the_floor_at_the_last_step()
    {
        Assert.Equal(0.25, LearningRateSchedule.At(0, 100, 1.0, 4, 0.1), 12);
        Assert.Equal(1.0, LearningRateSchedule.At(4, 100, 1.0, 4, 0.1), 12);
        Assert.Equal(0.55, LearningRateSchedule.At(52, 100, 1.0, 4, 0.1), 12);       // half-way through the decay
        Assert.Equal(0.1, LearningRateSchedule.At(100, 100, 1.0, 4, 0.1), 12);
    }

    [Fact]
    public void A_warm_restart_ends_the_first_cosine_at_its_step_and_runs_a_second_at_a_lower_peak()
    {
        for (int step = 0; step < 60; step++)
            Assert.Equal(LearningRateSchedule.At(step, 60, 1.0, 4, 0.1), LearningRateSchedule.At(step, 100, 60, 1.0, 4, 0.1), 12);
        double peak = LearningRateSchedule.RestartPeakFraction;
        Assert.Equal(peak / 4, LearningRateSchedule.At(60, 100, 60, 1.0, 4, 0.1), 12);                // warm-up again
        Assert.Equal(peak, LearningRateSchedule.At(64, 100, 60, 1.0, 4, 0.1), 12);
        Assert.Equal(peak * 0.1, LearningRateSchedule.At(100, 100, 60, 1.0, 4, 0.1), 12);
        Assert.Equal(LearningRateSchedule.At(70, 100, 1.0, 4, 0.1), LearningRateSchedule.At(70, 100, null, 1.0, 4, 0.1), 12);
    }
}
