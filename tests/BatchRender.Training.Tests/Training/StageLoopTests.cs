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
}
