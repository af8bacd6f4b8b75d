using BatchRender.Core.Configuration;
using BatchRender.Worker.Health;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Diagnostics.HealthChecks;
using Microsoft.AspNetCore.Hosting;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;

namespace BatchRender.Worker;

/// <summary>The worker as the container runs it: the worker services plus /healthz and /readyz on Worker:HealthPort.</summary>
public static class WorkerApplication
{
    /// <param name="configure">Adjusts the builder before it is built (configuration sources, service overrides).</param>
    public static WebApplication Create(string[] args, Action<WebApplicationBuilder>? configure = null)
    {
        var builder = WebApplication.CreateBuilder(args);
        configure?.Invoke(builder);
        builder.Services.AddBatchRenderWorker(builder.Configuration);
        var port = builder.Configuration.GetSection(ConfigSections.Worker).Get<WorkerOptions>()?.HealthPort ?? new WorkerOptions().HealthPort;
        builder.WebHost.UseUrls($"http://+:{port}");

        var app = builder.Build();
        // Live: the process answers. Ready: models loaded and the queue reachable.
        app.MapHealthChecks(HealthEndpoints.Live, new HealthCheckOptions { Predicate = _ => false });
        app.MapHealthChecks(HealthEndpoints.Ready, new HealthCheckOptions { Predicate = check => check.Tags.Contains(WorkerReadinessCheck.Tag) });
        return app;
    }
}
