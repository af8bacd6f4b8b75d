using Azure.Data.Tables;
using Azure.Storage.Blobs;
using Azure.Storage.Queues;
using BatchRender.Core.Local;

namespace BatchRender.Core.Tests.Infrastructure;

/// <summary>
/// A real Azurite for the tests, of this test process's own: installed if needed (npm ci from the repository's
/// package.json), started in memory on free ports, shared by every test class, and stopped when the process ends
/// (however it ends). Never one found on the standard ports: that may belong to another test run that stops it midway. Self-contained so other test projects can link this file (&lt;Compile Include=... Link=... /&gt;).
/// Tests isolate themselves with <see cref="UniqueName"/> containers, queues and tables.
/// Use as <c>IClassFixture&lt;AzuriteFixture&gt;</c>: classes still run in parallel, all on one emulator.
/// </summary>
public sealed class AzuriteFixture : IAsyncLifetime
{
    private static readonly Lazy<Task<AzuriteLauncher>> Shared = new(StartSharedAsync, LazyThreadSafetyMode.ExecutionAndPublication);

    public AzuriteLauncher Launcher { get; private set; } = null!;
    public string ConnectionString => Launcher.ConnectionString;

    public async Task InitializeAsync() => Launcher = await Shared.Value;

    public Task DisposeAsync() => Task.CompletedTask; // the shared emulator lives until the process exits

    public BlobServiceClient BlobService(BlobClientOptions? options = null) => new(ConnectionString, options);
    public QueueServiceClient QueueService(QueueClientOptions? options = null) => new(ConnectionString, options);
    public TableServiceClient TableService(TableClientOptions? options = null) => new(ConnectionString, options);

    /// <summary>A name valid for a container, queue and table (lowercase letters and digits, starts with a letter).</summary>
    public static string UniqueName(string prefix) =>
        (prefix.ToLowerInvariant() + Guid.NewGuid().ToString("N"))[..Math.Min(prefix.Length + 32, 60)];

    private static async Task<AzuriteLauncher> StartSharedAsync()
    {
        var launcher = await AzuriteLauncher.StartAsync(
            new AzuriteOptions { InMemory = true, BlobPort = FreePort(), QueuePort = FreePort(), TablePort = FreePort() });
        AppDomain.CurrentDomain.ProcessExit += (_, _) => launcher.DisposeAsync().AsTask().GetAwaiter().GetResult();
        return launcher;
    }

    private static int FreePort()
    {
        using var listener = new System.Net.Sockets.TcpListener(System.Net.IPAddress.Loopback, 0);
        listener.Start();
        return ((System.Net.IPEndPoint)listener.LocalEndpoint).Port;
    }
}
