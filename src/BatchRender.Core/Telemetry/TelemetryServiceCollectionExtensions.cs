using BatchRender.Core.Configuration;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using OpenTelemetry.Exporter;
using OpenTelemetry.Metrics;
using OpenTelemetry.Resources;
using OpenTelemetry.Trace;

namespace BatchRender.Core.Telemetry;

public static class TelemetryServiceCollectionExtensions
{
    /// <summary>
    /// OpenTelemetry traces and metrics of the "BatchRender" source and meter, exported over OTLP only when
    /// <c>Telemetry:OtlpEndpoint</c> is set. Without it nothing is registered, so nothing is collected or printed.
    /// </summary>
    public static IServiceCollection AddBatchRenderTelemetry(this IServiceCollection services, IConfiguration configuration)
    {
        var options = configuration.GetSection(ConfigSections.Telemetry).Get<TelemetryOptions>() ?? new TelemetryOptions();
        if (string.IsNullOrWhiteSpace(options.OtlpEndpoint)) return services;
        var endpoint = new Uri(options.OtlpEndpoint, UriKind.Absolute);
        void Exporter(OtlpExporterOptions o) => o.Endpoint = endpoint;

        services.AddOpenTelemetry()
            .ConfigureResource(resource => resource.AddService(options.ServiceName))
            .WithTracing(tracing => tracing.AddSource(BatchRenderTelemetry.Name).AddOtlpExporter(Exporter))
            .WithMetrics(metrics => metrics.AddMeter(BatchRenderTelemetry.Name).AddOtlpExporter(Exporter));
        return services;
    }
}
