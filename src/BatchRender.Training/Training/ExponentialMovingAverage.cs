using TorchSharp;
using static TorchSharp.torch;

namespace BatchRender.Training.Training;

/// <summary>EMA weights kept in a shadow module of the same type: shadow = decay x shadow + (1 - decay) x live after
/// every step (buffers are copied). The shadow is what the trainer saves as the model. The decay ramps up as
/// min(decay, (1 + n) / (10 + n)) so early steps are not dominated by the random initialisation.</summary>
public sealed class ExponentialMovingAverage
{
    private readonly (Tensor Live, Tensor Shadow)[] parameters;
    private readonly (Tensor Live, Tensor Shadow)[] buffers;
    private readonly double decay;

    public ExponentialMovingAverage(nn.Module live, nn.Module shadow, double decay)
    {
        this.decay = decay;
        parameters = Pair(live.named_parameters().Select(p => (p.name, (Tensor)p.parameter)), shadow.named_parameters().Select(p => (p.name, (Tensor)p.parameter)));
        buffers = Pair(live.named_buffers(), shadow.named_buffers());
        CopyLiveToShadow();
        shadow.eval();
        foreach (var (_, s) in parameters) s.requires_grad = false;
    }

    public void CopyLiveToShadow()
    {
        using var _ = no_grad();
        foreach (var (l, s) in parameters.Concat(buffers)) s.copy_(l);
    }

    public void Update(int updatesDone)
    {
        double d = Math.Min(decay, (1.0 + updatesDone) / (10.0 + updatesDone));
        using var _ = no_grad();
        foreach (var (l, s) in parameters) s.mul_(d).add_(l, alpha: 1 - d);
        foreach (var (l, s) in buffers) s.copy_(l);
    }

    private static (Tensor, Tensor)[] Pair(IEnumerable<(string name, Tensor t)> live, IEnumerable<(string name, Tensor t)> shadow)
    {
        var shadowByName = shadow.ToDictionary(p => p.name, p => p.t);
        return live.Select(p => (p.t, shadowByName.TryGetValue(p.name, out var s) ? s
            : throw new ArgumentException($"EMA: the shadow module has no '{p.name}'"))).ToArray();
    }
}
