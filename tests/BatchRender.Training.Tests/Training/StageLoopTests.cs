using BatchRender.Training.Training;
using static TorchSharp.torch;

namespace BatchRender.Training.Tests.Training;

public class StageLoopTests
{
    [Fact]
    public void Resuming_with_another_set_of_networks_is_refused_with_a_reason_not_a_missing_file()
    {
        var directory = Path.Combine(Path.GetTempPath(), "stageloop-" + Guid.NewGuid().ToString("N"));
        try
        {
            var budget = new StageBudget { Steps = 2, BatchSize = 1, WarmupSteps = 1, CheckpointEvery = 1 };
            using var a = nn.Linear(2, 1); using var aEma = nn.Linear(2, 1);
            using var b = nn.Linear(2, 1); using var bEma = nn.Linear(2, 1);
            Tensor Loss(nn.Module<Tensor, Tensor> net) => net.call(ones(1, 2)).pow(2).sum();
            new StageLoop("s", [(a, aEma)], budget, 1, directory, null).Run(_ => Loss(a), resume: false, CancellationToken.None);

            var more = new StageLoop("s", [(a, aEma), (b, bEma)], budget with { Steps = 4 }, 1, directory, null);
            var error = Assert.Throws<InvalidOperationException>(() => more.Run(_ => Loss(a) + Loss(b), resume: true, CancellationToken.None));
            Assert.Contains("holds 1 networks, this run trains 2", error.Message);

            // The same set at other sizes is refused too, naming the file.
            using var wider = nn.Linear(2, 3); using var widerEma = nn.Linear(2, 3);
            var resized = new StageLoop("s", [(wider, widerEma)], budget with { Steps = 4 }, 1, directory, null);
            error = Assert.Throws<InvalidOperationException>(() => resized.Run(_ => Loss(wider), resume: true, CancellationToken.None));
            Assert.Contains("live-0.dat", error.Message);
            Assert.Contains("sizes", error.Message);

            // The same set resumes (and extends) as before.
            var same = new StageLoop("s", [(a, aEma)], budget with { Steps = 4 }, 1, directory, null);
            Assert.Equal(4, same.Run(_ => Loss(a), resume: true, CancellationToken.None).Steps);
        }
        finally
        {
            if (Directory.Exists(directory)) Directory.Delete(directory, recursive: true);
        }
    }

    [Fact]
    public void A_budget_with_a_restart_trains_the_same_weights_as_a_finished_stage_extended_from_there()
    {
        var root = Path.Combine(Path.GetTempPath(), "stageloop-" + Guid.NewGuid().ToString("N"));
        try
        {
            // Each step's loss is drawn from its step alone, as the trainer's are, so the two paths see the same data.
            static Tensor Loss(nn.Module<Tensor, Tensor> net, int step)
            {
                using var generator = new Generator((ulong)step + 1);
                return (net.call(randn([4, 3], generator: generator)) - 1).pow(2).mean();
            }
            var budget = new StageBudget { Steps = 8, RestartAt = 5, BatchSize = 4, LearningRate = 0.05, WarmupSteps = 2, CheckpointEvery = 100, EmaDecay = 0.5 };

            manual_seed(7);
            using var once = nn.Linear(3, 2); using var onceEma = nn.Linear(3, 2);
            new StageLoop("s", [(once, onceEma)], budget, 1, Path.Combine(root, "once"), null).Run(s => Loss(once, s), resume: false, CancellationToken.None);

            manual_seed(7);
            using var twice = nn.Linear(3, 2); using var twiceEma = nn.Linear(3, 2);
            var extendedDirectory = Path.Combine(root, "extended");
            new StageLoop("s", [(twice, twiceEma)], budget with { Steps = 5, RestartAt = null }, 1, extendedDirectory, null)
                .Run(s => Loss(twice, s), resume: false, CancellationToken.None);
            new StageLoop("s", [(twice, twiceEma)], budget with { RestartAt = null }, 1, extendedDirectory, null)
                .Run(s => Loss(twice, s), resume: true, CancellationToken.None);

            Assert.Equal(once.weight!.data<float>().ToArray(), twice.weight!.data<float>().ToArray());
            Assert.Equal(onceEma.weight!.data<float>().ToArray(), twiceEma.weight!.data<float>().ToArray());

            // Without the restart the weights differ: the test would notice a schedule that ignored it.
            manual_seed(7);
            using var plain = nn.Linear(3, 2); using var plainEma = nn.Linear(3, 2);
            new StageLoop("s", [(plain, plainEma)], budget with { RestartAt = null }, 1, Path.Combine(root, "plain"), null)
                .Run(s => Loss(plain, s), resume: false, CancellationToken.None);
            Assert.NotEqual(once.weight!.data<float>().ToArray(), plain.weight!.data<float>().ToArray());
        }
        finally
        {
            if (Directory.Exists(root)) Directory.Delete(root, recursive: true);
        }
    }

    [Theory]
    [InlineData(0)]
    [InlineData(8)]
    [InlineData(9)]
    public void A_restart_outside_the_step_budget_is_refused(int restartAt)
    {
        var error = Assert.Throws<ArgumentOutOfRangeException>(() => new StageBudget { Steps = 8, RestartAt = restartAt }.Validated("vae"));
        Assert.Contains("vae.RestartAt", error.Message);
        Assert.Throws<ArgumentOutOfRangeException>(() => new StageBudget { Minutes = 3, RestartAt = 2 }.Validated("vae"));
    }
}
