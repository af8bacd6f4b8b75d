namespace BatchRender.Core.Configuration;

/// <summary>HTTP paths the worker serves on <see cref="WorkerOptions.HealthPort"/>; the Kubernetes probes use
/// the same paths (infra/k8s, checked by the infra tests).</summary>
public static class HealthEndpoints
{
    /// <summary>Liveness: the process is running and not wedged.</summary>
    public const string Live = "/healthz";
    /// <summary>Readiness: models loaded and the transport connected; the worker takes tasks.</summary>
    public const string Ready = "/readyz";
}
