using BatchRender.Core.Configuration;
using BatchRender.Worker.Rendering;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace BatchRender.Worker.Health;

/// <summary>
/// Loads the models in Worker:Preload (at the configured default quantization) when the host starts, so the worker
/// turns ready only once it can render at full speed. A model that fails to load keeps the worker unready with the
/// reason, which /readyz reports (Kubernetes then keeps traffic-free and restarts per its probes).
/// </summary>
public sealed class ModelPreloadService(IRenderEngine engine, WorkerReadiness readiness, IOptions<WorkerOptions> worker,
    IOptions<RenderDefaultsOptions> defaults, ILogger<ModelPreloadService> logger) : BackgroundService
{
    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        try
        {
            foreach (var model in worker.Value.Preload.Where(m => !string.IsNullOrWhiteSpace(m)).Distinct())
                await engine.PreloadAsync(model, defaults.Value.Quantization, stoppingToken);
            readiness.ModelsLoaded = true;
        }
        catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
        {
        }
        catch (Exception e)
        {
            readiness.ModelProblem = $"preloading models failed: {e.Message}";
            logger.LogError(e, "Preloading models {Models} failed; the worker stays unready", string.Join(", ", worker.Value.Preload));
        }
    }
}
