using Azure.Data.Tables;
using Azure.Storage.Blobs;
using Azure.Storage.Queues;
using BatchRender.Core.Hosting;
using BatchRender.Core.Ingestion;
using BatchRender.Core.Transport;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Options;
using OpenTelemetry.Trace;

namespace BatchRender.Core.Tests.Hosting;

/// <summary>The registration on its own: which clients and transport the configuration selects, and start-up validation.
/// Nothing here talks to Azure: building clients makes no request.</summary>
public sealed class CoreRegistrationTests
{
    private static IHost Build(Dictionary<string, string?> settings)
    {
        var builder = Host.CreateApplicationBuilder(new HostApplicationBuilderSettings { DisableDefaults = true });
        builder.Configuration.AddInMemoryCollection(settings);
        builder.Services.AddBatchRenderCore(builder.Configuration);
        return builder.Build();
    }

    [Fact]
    public async Task Managed_identity_settings_give_clients_on_the_configured_service_uris()
    {
        using var host = Build(new()
        {
            ["Storage:blobServiceUri"] = "https://acct.blob.core.windows.net",
            ["Storage:queueServiceUri"] = "https://acct.queue.core.windows.net",
            ["Storage:tableServiceUri"] = "https://acct.table.core.windows.net",
            ["Models:demo:Path"] = "models/demo",
        });
        await host.StartAsync();
        Assert.Equal("acct.blob.core.windows.net", host.Services.GetRequiredService<BlobServiceClient>().Uri.Host);
        Assert.Equal("acct.queue.core.windows.net", host.Services.GetRequiredService<QueueServiceClient>().Uri.Host);
        Assert.Equal("acct.table.core.windows.net", host.Services.GetRequiredService<TableServiceClient>().Uri.Host);
        Assert.IsType<StorageQueueTaskSender>(host.Services.GetRequiredService<IRenderTaskSender>());
        Assert.NotNull(host.Services.GetRequiredService<IngestionService>());
        Assert.NotNull(host.Services.GetRequiredService<ScheduleRunner>());
        await host.StopAsync();
    }

    [Fact]
    public async Task The_service_bus_transport_uses_the_namespace_with_the_shared_credential()
    {
        using var host = Build(new()
        {
            ["Storage"] = "UseDevelopmentStorage=true",
            ["Transport:Kind"] = "ServiceBus",
            ["ServiceBus:fullyQualifiedNamespace"] = "batchrender.servicebus.windows.net",
        });
        await host.StartAsync();
        Assert.IsType<ServiceBusTaskSender>(host.Services.GetRequiredService<IRenderTaskSender>());
        Assert.IsType<ServiceBusTaskReceiver>(host.Services.GetRequiredService<IRenderTaskReceiver>());
        Assert.Equal("batchrender.servicebus.windows.net",
            host.Services.GetRequiredService<Azure.Messaging.ServiceBus.ServiceBusClient>().FullyQualifiedNamespace);
        await host.StopAsync();
    }

    [Theory]
    [InlineData(null, null, "Storage needs a connection string")]
    [InlineData("Transport:Kind", "ServiceBus", "ServiceBus transport needs ServiceBus")]
    [InlineData("Transport:QueueName", "Render_Tasks", "QueueName")]
    [InlineData("Transport:MaxDeliveryCount", "0", "MaxDeliveryCount")]
    public async Task Bad_settings_stop_the_host_at_start_naming_the_setting(string? key, string? value, string expected)
    {
        var settings = new Dictionary<string, string?>();
        if (key is not null)
        {
            settings["Storage"] = "UseDevelopmentStorage=true";
            settings[key] = value;
        }
        using var host = Build(settings);
        var error = await Assert.ThrowsAnyAsync<Exception>(() => host.StartAsync()); // OptionsValidationException, or several in an AggregateException
        Assert.True(error is OptionsValidationException or AggregateException { InnerExceptions: [OptionsValidationException, ..] }, error.ToString());
        Assert.Contains(expected, error.Message);
    }

    [Fact]
    public void Telemetry_exports_only_when_an_otlp_endpoint_is_configured()
    {
        using (var quiet = Build(new() { ["Storage"] = "UseDevelopmentStorage=true" }))
            Assert.Null(quiet.Services.GetService<TracerProvider>());
        using var exporting = Build(new() { ["Storage"] = "UseDevelopmentStorage=true", ["Telemetry:OtlpEndpoint"] = "http://127.0.0.1:4317" });
        Assert.NotNull(exporting.Services.GetService<TracerProvider>());
    }
}
