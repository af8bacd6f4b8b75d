using BatchRender.Core.Configuration;
using BatchRender.Core.Hosting;
using BatchRender.Model.Pipelines;
using BatchRender.Worker.Health;
using BatchRender.Worker.Processing;
using BatchRender.Worker.Rendering;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Options;

namespace BatchRender.Worker;

public static class WorkerServiceCollectionExtensions
{
    /// <summary>
    /// Everything a render worker needs in a host: Core's clients, transport and state (AddBatchRenderCore), the
    /// worker loop and model preloading as hosted services, the render engine over the TorchSharp pipeline, and the
    /// readiness check. The host must also register the pipeline loader with <see cref="AddRenderPipeline"/> (or
    /// replace <see cref="IRenderEngine"/>). The HTTP health endpoints are mapped by <see cref="WorkerApplication"/>;
    /// an in-process worker (the CLI) runs without them.
    /// </summary>
    public static IServiceCollection AddBatchRenderWorker(this IServiceCollection services, IConfiguration configuration)
    {
        services.AddBatchRenderCore(configuration);
        services.AddOptions<WorkerOptions>().Bind(configuration.GetSection(ConfigSections.Worker)).ValidateDataAnnotations().ValidateOnStart();
        services.TryAddSingleton<WorkerIdentity>();
        services.TryAddSingleton<WorkerReadiness>();
        services.TryAddSingleton<RenderOutputWriter>();
        services.TryAddSingleton<IRenderEngine>(sp => ActivatorUtilities.CreateInstance<PipelineRenderEngine>(sp,
            sp.GetService<Func<PipelineLoadOptions, IRenderPipeline>>()
            ?? throw new InvalidOperationException(
                "No render pipeline is registered: call services.AddRenderPipeline(loader) (or register an IRenderEngine).")));
        services.AddHostedService<ModelPreloadService>();
        services.AddHostedService<RenderWorkerService>();
        // The host must wait for the drain: stopping gives the worker DrainTimeout to finish, plus time to settle.
        services.AddOptions<HostOptions>().Configure<IOptions<WorkerOptions>>((host, worker) =>
            host.ShutdownTimeout = TimeSpan.FromTicks(Math.Max(host.ShutdownTimeout.Ticks, (worker.Value.DrainTimeout + TimeSpan.FromSeconds(10)).Ticks)));
        services.AddHealthChecks().AddCheck<WorkerReadinessCheck>("worker", tags: [WorkerReadinessCheck.Tag]);
        return services;
    }

    /// <summary>Registers the loader of the render pipeline (one call per (model, quantization), kept warm).</summary>
    public static IServiceCollection AddRenderPipeline(this IServiceCollection services, Func<PipelineLoadOptions, IRenderPipeline> loader)
    {
        services.Replace(ServiceDescriptor.Singleton(loader));
        return services;
    }
}
