using Azure.Core;
using Azure.Data.Tables;
using Azure.Identity;
using Azure.Messaging.ServiceBus;
using Azure.Storage.Blobs;
using Azure.Storage.Queues;
using BatchRender.Core.Configuration;
using BatchRender.Core.Ingestion;
using BatchRender.Core.Manifests;
using BatchRender.Core.Reports;
using BatchRender.Core.Schedules;
using BatchRender.Core.State;
using BatchRender.Core.Storage;
using BatchRender.Core.Telemetry;
using BatchRender.Core.Transport;
using Microsoft.Extensions.Azure;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace BatchRender.Core.Hosting;

public static class CoreServiceCollectionExtensions
{
    /// <summary>Name of the BlobServiceClient used for output writes: the SDK's retries off, Polly retries instead.</summary>
    public const string ResilientWritesClient = "resilient-writes";

    /// <summary>
    /// Everything both sides share: validated options, the Azure clients (one <c>DefaultAzureCredential</c>, registered
    /// with <c>AddAzureClients</c>), the transport chosen by <c>Transport:Kind</c>, job state, resilient blob writes,
    /// reports, manifest validation and ingestion, and telemetry (exported only when <c>Telemetry:OtlpEndpoint</c> is set).
    /// </summary>
    public static IServiceCollection AddBatchRenderCore(this IServiceCollection services, IConfiguration configuration)
    {
        services.TryAddSingleton(TimeProvider.System);
        Bind<TransportOptions>(services, configuration, ConfigSections.Transport);
        Bind<BlobOptions>(services, configuration, ConfigSections.Blobs);
        Bind<StateOptions>(services, configuration, ConfigSections.State);
        Bind<LimitsOptions>(services, configuration, ConfigSections.Limits);
        Bind<RenderDefaultsOptions>(services, configuration, ConfigSections.Defaults);
        Bind<TelemetryOptions>(services, configuration, ConfigSections.Telemetry);
        services.AddOptions<BlobWriteResilienceOptions>().Bind(configuration.GetSection($"{ConfigSections.Blobs}:Resilience"));

        var storage = configuration.GetSection(ConfigSections.Storage);
        services.AddOptions<StorageConnectionOptions>()
            .Bind(storage)
            .Configure(o => o.ConnectionString ??= storage.Value)
            .ValidateDataAnnotations()
            .Validate<IOptions<TransportOptions>>(
                (o, transport) => o.UsesConnectionString || transport.Value.Kind != TransportKind.StorageQueue || o.QueueServiceUri is not null,
                "The StorageQueue transport with managed identity needs Storage:queueServiceUri.")
            .ValidateOnStart();
        var serviceBus = configuration.GetSection(ConfigSections.ServiceBus);
        services.AddOptions<ServiceBusConnectionOptions>()
            .Bind(serviceBus)
            .Configure(o => o.ConnectionString ??= serviceBus.Value)
            .Validate<IOptions<TransportOptions>>(
                (o, transport) => transport.Value.Kind != TransportKind.ServiceBus || o.IsConfigured,
                "The ServiceBus transport needs ServiceBus (a connection string) or ServiceBus:fullyQualifiedNamespace.")
            .ValidateOnStart();

        services.AddAzureClients(clients =>
        {
            clients.UseCredential(new DefaultAzureCredential());
            clients.AddClient<BlobServiceClient, BlobClientOptions>((options, credential, provider) => Blobs(provider, options, credential));
            clients.AddClient<BlobServiceClient, BlobClientOptions>((_, credential, provider) =>
                    Blobs(provider, ResilientBlobWriter.ClientOptions(provider.GetRequiredService<IOptions<BlobWriteResilienceOptions>>().Value), credential))
                .WithName(ResilientWritesClient);
            clients.AddClient<QueueServiceClient, QueueClientOptions>((options, credential, provider) =>
            {
                var s = provider.GetRequiredService<IOptions<StorageConnectionOptions>>().Value;
                return s.UsesConnectionString ? new QueueServiceClient(s.ConnectionString, options)
                    : new QueueServiceClient(s.QueueServiceUri ?? throw new InvalidOperationException("Storage:queueServiceUri is not set."), credential, options);
            });
            clients.AddClient<TableServiceClient, TableClientOptions>((options, credential, provider) =>
            {
                var s = provider.GetRequiredService<IOptions<StorageConnectionOptions>>().Value;
                return s.UsesConnectionString ? new TableServiceClient(s.ConnectionString, options) : new TableServiceClient(s.TableServiceUri!, credential, options);
            });
            clients.AddClient<ServiceBusClient, ServiceBusClientOptions>((options, credential, provider) =>
            {
                var s = provider.GetRequiredService<IOptions<ServiceBusConnectionOptions>>().Value;
                return !string.IsNullOrWhiteSpace(s.ConnectionString) ? new ServiceBusClient(s.ConnectionString, options)
                    : new ServiceBusClient(s.FullyQualifiedNamespace ?? throw new InvalidOperationException(
                        "ServiceBus:fullyQualifiedNamespace is not set."), credential, options);
            });
        });

        // Manifests: the served models are the names under Models (with their own guidance scales, where set).
        services.TryAddSingleton(provider => new ManifestRules(
            provider.GetRequiredService<IOptions<LimitsOptions>>().Value,
            provider.GetRequiredService<IOptions<RenderDefaultsOptions>>().Value,
            ManifestRules.ModelNames(configuration),
            ManifestRules.ModelGuidanceScalesFrom(configuration)));
        services.TryAddSingleton<ManifestValidator>();
        services.TryAddSingleton<ManifestExpander>();

        // Transport.
        services.TryAddSingleton<IRenderTaskSender>(provider =>
        {
            var transport = provider.GetRequiredService<IOptions<TransportOptions>>().Value;
            return transport.Kind == TransportKind.ServiceBus
                ? new ServiceBusTaskSender(provider.GetRequiredService<ServiceBusClient>(), transport)
                : new StorageQueueTaskSender(provider.GetRequiredService<QueueServiceClient>(), transport);
        });
        services.TryAddSingleton<IRenderTaskReceiver>(provider =>
        {
            var transport = provider.GetRequiredService<IOptions<TransportOptions>>().Value;
            // The item of a task dead-lettered for too many deliveries is dead-lettered too, so its job can end.
            async Task DeadLetterItemAsync(DeadLetteredTask task, CancellationToken ct)
            {
                if (task.Properties.TryGetValue(TaskProperties.JobId, out var jobId) && task.Properties.TryGetValue(TaskProperties.ItemId, out var itemId))
                    await provider.GetRequiredService<JobTracker>().DeadLetterItemAsync(jobId, itemId, $"{task.Reason}: {task.Description}", ct);
            }
            return transport.Kind == TransportKind.ServiceBus
                ? new ServiceBusTaskReceiver(provider.GetRequiredService<ServiceBusClient>(), transport, DeadLetterItemAsync)
                : new StorageQueueTaskReceiver(provider.GetRequiredService<QueueServiceClient>(), transport,
                    provider.GetRequiredService<TimeProvider>(), DeadLetterItemAsync);
        });

        // State, outputs, reports, ingestion.
        services.TryAddSingleton<JobStateStore>();
        services.TryAddSingleton(provider => new ResilientBlobWriter(
            provider.GetRequiredService<IAzureClientFactory<BlobServiceClient>>().CreateClient(ResilientWritesClient)
                .GetBlobContainerClient(provider.GetRequiredService<IOptions<BlobOptions>>().Value.RendersContainer),
            provider.GetRequiredService<IOptions<BlobWriteResilienceOptions>>().Value,
            provider.GetRequiredService<ILoggerFactory>().CreateLogger<ResilientBlobWriter>()));
        services.TryAddSingleton<JobReportWriter>();
        services.TryAddEnumerable(ServiceDescriptor.Singleton<IJobEndedHandler, JobReportWriter>(p => p.GetRequiredService<JobReportWriter>()));
        services.TryAddSingleton<JobTracker>();
        services.TryAddSingleton<IngestionService>();
        services.TryAddSingleton<ScheduleParser>();
        services.TryAddSingleton<ScheduleRunner>();

        services.AddBatchRenderTelemetry(configuration);
        return services;
    }

    private static BlobServiceClient Blobs(IServiceProvider provider, BlobClientOptions options, TokenCredential credential)
    {
        var s = provider.GetRequiredService<IOptions<StorageConnectionOptions>>().Value;
        return s.UsesConnectionString ? new BlobServiceClient(s.ConnectionString, options) : new BlobServiceClient(s.BlobServiceUri!, credential, options);
    }

    private static void Bind<TOptions>(IServiceCollection services, IConfiguration configuration, string section) where TOptions : class =>
        services.AddOptions<TOptions>().Bind(configuration.GetSection(section)).ValidateDataAnnotations().ValidateOnStart();
}
