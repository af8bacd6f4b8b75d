using Microsoft.Extensions.Diagnostics.HealthChecks;

namespace BatchRender.Worker.Health;

/// <summary>What /readyz reports: the preloaded models are loaded and the last receive reached the queue.</summary>
public sealed class WorkerReadiness
{
    private volatile bool _queueReachable;
    private volatile bool _modelsLoaded;
    private volatile string? _modelProblem;

    public bool QueueReachable { get => _queueReachable; set => _queueReachable = value; }
    public bool ModelsLoaded { get => _modelsLoaded; set => _modelsLoaded = value; }
    /// <summary>Why a preloaded model could not be loaded (the worker stays unready).</summary>
    public string? ModelProblem { get => _modelProblem; set => _modelProblem = value; }

    public bool IsReady => QueueReachable && ModelsLoaded;
}

/// <summary>The readiness check behind /readyz (tagged <see cref="Tag"/>); /healthz runs no checks: the process answers.</summary>
public sealed class WorkerReadinessCheck(WorkerReadiness readiness) : IHealthCheck
{
    public const string Tag = "ready";

    public Task<HealthCheckResult> CheckHealthAsync(HealthCheckContext context, CancellationToken cancellationToken = default)
    {
        var data = new Dictionary<string, object> { ["modelsLoaded"] = readiness.ModelsLoaded, ["queueReachable"] = readiness.QueueReachable };
        if (readiness.IsReady) return Task.FromResult(HealthCheckResult.Healthy("models loaded, queue reachable", data));
        var why = readiness.ModelProblem ?? (!readiness.ModelsLoaded ? "models are loading" : "the queue has not been reached");
        if (readiness.ModelsLoaded && !readiness.QueueReachable) why = "the queue is not reachable";
        return Task.FromResult(HealthCheckResult.Unhealthy(why, data: data));
    }
}
