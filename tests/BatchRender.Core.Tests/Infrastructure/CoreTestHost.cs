using Azure.Data.Tables;
using Azure.Storage.Blobs;
using Azure.Storage.Queues;
using BatchRender.Core.Configuration;
using BatchRender.Core.Hosting;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace BatchRender.Core.Tests.Infrastructure;

/// <summary>
/// The real Core registration (<c>AddBatchRenderCore</c>) over Azurite, with containers, queues and tables of its own
/// so tests run side by side. Started like a production host (options validated on start).
/// </summary>
public sealed class CoreTestHost : IAsyncDisposable
{
    private readonly IHost _host;

    private CoreTestHost(IHost host) => _host = host;

    public IServiceProvider Services => _host.Services;
    public T Get<T>() where T : notnull => _host.Services.GetRequiredService<T>();
    public BlobContainerClient Manifests => Get<BlobServiceClient>().GetBlobContainerClient(Get<IOptions<BlobOptions>>().Value.ManifestsContainer);
    public BlobContainerClient Renders => Get<BlobServiceClient>().GetBlobContainerClient(Get<IOptions<BlobOptions>>().Value.RendersContainer);
    public BlobContainerClient Schedules => Get<BlobServiceClient>().GetBlobContainerClient(Get<IOptions<BlobOptions>>().Value.SchedulesContainer);
    public QueueClient TaskQueue => Get<QueueServiceClient>().GetQueueClient(Get<IOptions<TransportOptions>>().Value.QueueName);

    /// <summary>Tasks on the task queue (several may share a queue message); 0 when nothing ever created the queue.
    /// Peeks every message, so only for queues of up to 32 messages.</summary>
    public async Task<int> QueuedTasksAsync()
    {
        if (!await TaskQueue.ExistsAsync()) return 0;
        var messages = (await TaskQueue.GetPropertiesAsync()).Value.ApproximateMessagesCount;
        if (messages > 32) throw new InvalidOperationException($"{messages} messages: too many to peek (32 at most)");
        var peeked = (await TaskQueue.PeekMessagesAsync(32)).Value;
        return peeked.Sum(m => BatchRender.Core.Transport.StorageQueueTaskReceiver.TaskCount(m.MessageText));
    }

    public static async Task<CoreTestHost> StartAsync(AzuriteFixture azurite, IDictionary<string, string?>? settings = null,
        Action<IServiceCollection>? configure = null)
    {
        var id = Guid.NewGuid().ToString("N")[..10];
        var builder = Host.CreateApplicationBuilder(new HostApplicationBuilderSettings { DisableDefaults = true });
        builder.Configuration.AddInMemoryCollection(new Dictionary<string, string?>
        {
            ["Storage"] = azurite.ConnectionString,
            ["Transport:QueueName"] = $"tasks-{id}",
            ["Transport:PoisonQueueName"] = $"tasks-{id}-poison",
            ["Blobs:ManifestsContainer"] = $"manifests-{id}",
            ["Blobs:RendersContainer"] = $"renders-{id}",
            ["Blobs:SchedulesContainer"] = $"schedules-{id}",
            ["State:JobsTable"] = $"jobs{id}",
            ["State:ItemsTable"] = $"items{id}",
            ["State:SchedulesTable"] = $"schedules{id}",
            ["Models:demo:Path"] = "models/demo",
        });
        if (settings is not null) builder.Configuration.AddInMemoryCollection(settings);
        builder.Logging.SetMinimumLevel(LogLevel.Warning);
        configure?.Invoke(builder.Services);
        builder.Services.AddBatchRenderCore(builder.Configuration);
        var host = builder.Build();
        await host.StartAsync();
        var test = new CoreTestHost(host);
        await test.Manifests.CreateIfNotExistsAsync();
        return test;
    }

    public async ValueTask DisposeAsync()
    {
        await _host.StopAsync();
        _host.Dispose();
    }
}
