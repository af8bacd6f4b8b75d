using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace BatchRender.Model.Attention;

/// <summary>diffusers GELU activation module: proj (Linear) then GELU (tanh approximation for "gelu-approximate").</summary>
public sealed class GeluProjection : nn.Module<Tensor, Tensor>
{
    public nn.Module<Tensor, Tensor> proj;
    private readonly bool tanhApproximation;

    public GeluProjection(long dimIn, long dimOut, bool tanhApproximation, Device? device = null, ScalarType? dtype = null)
        : base(nameof(GeluProjection))
    {
        this.tanhApproximation = tanhApproximation;
        proj = nn.Linear(dimIn, dimOut, hasBias: true, device: device, dtype: dtype);
        RegisterComponents();
    }

    public override Tensor forward(Tensor x)
    {
        using var scope = torch.NewDisposeScope();
        var h = proj.call(x);
        var y = tanhApproximation ? nn.functional.gelu(h, GELU.Approximate.tanh) : nn.functional.gelu(h);
        return y.MoveToOuterDisposeScope();
    }
}

/// <summary>
/// diffusers FeedForward: net = [GELU projection (net.0.proj), Dropout (net.1), Linear (net.2)] (a Sequential, whose items
/// the quantizer can swap); see <see cref="ProjIn"/> and <see cref="ProjOut"/> for the two Linears.
/// </summary>
public sealed class FeedForward : nn.Module<Tensor, Tensor>
{
    public Sequential net;

    public FeedForward(long dim, long innerDim, string activationFn = "gelu-approximate", Device? device = null, ScalarType? dtype = null)
        : base(nameof(FeedForward))
    {
        bool tanh = activationFn switch
        {
            "gelu-approximate" => true,
            "gelu" => false,
            _ => throw new ArgumentException($"unsupported activation_fn '{activationFn}' (gelu-approximate or gelu)", nameof(activationFn)),
        };
        net = nn.Sequential(
            new GeluProjection(dim, innerDim, tanh, device, dtype),
            nn.Dropout(0.0),
            nn.Linear(innerDim, dim, hasBias: true, device: device, dtype: dtype));
        RegisterComponents();
    }

    /// <summary>ff.net.0.proj: [dim] -> [inner].</summary>
    public nn.Module<Tensor, Tensor> ProjIn => ((GeluProjection)net[0]).proj;
    /// <summary>ff.net.2: [inner] -> [dim].</summary>
    public nn.Module<Tensor, Tensor> ProjOut => (nn.Module<Tensor, Tensor>)net[2];

    public override Tensor forward(Tensor x) => net.call(x);
}
