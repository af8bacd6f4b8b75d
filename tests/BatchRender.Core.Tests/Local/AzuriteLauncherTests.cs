using Azure.Storage.Blobs;
using BatchRender.Core.Local;
using BatchRender.Core.Tests.Infrastructure;

namespace BatchRender.Core.Tests.Local;

public sealed class AzuriteLauncherTests(AzuriteFixture azurite) : IClassFixture<AzuriteFixture>
{
    [Fact]
    public async Task Serves_blob_queue_and_table_on_the_configured_ports()
    {
        var container = azurite.BlobService().GetBlobContainerClient(AzuriteFixture.UniqueName("launch"));
        await container.CreateAsync();
        await container.UploadBlobAsync("hello.txt", BinaryData.FromString("hi"));
        Assert.Equal("hi", (await container.GetBlobClient("hello.txt").DownloadContentAsync()).Value.Content.ToString());

        var queue = azurite.QueueService().GetQueueClient(AzuriteFixture.UniqueName("launch"));
        await queue.CreateAsync();
        await queue.SendMessageAsync("m");
        Assert.Equal("m", (await queue.ReceiveMessageAsync()).Value.MessageText);

        var table = azurite.TableService().GetTableClient(AzuriteFixture.UniqueName("launch"));
        await table.CreateAsync();
        await table.AddEntityAsync(new Azure.Data.Tables.TableEntity("p", "r"));
        Assert.NotNull((await table.GetEntityAsync<Azure.Data.Tables.TableEntity>("p", "r")).Value);
    }

    [Fact]
    public async Task A_second_launcher_reuses_the_running_emulator_and_leaves_it_running_on_dispose()
    {
        await using (var second = await AzuriteLauncher.StartAsync(azurite.Launcher.Options))
        {
            Assert.False(second.StartedHere);
            Assert.Equal(azurite.ConnectionString, second.ConnectionString);
        }
        // still reachable after the second launcher is gone
        var properties = await new BlobServiceClient(azurite.ConnectionString).GetPropertiesAsync();
        Assert.NotNull(properties.Value);
    }

    [Fact]
    public async Task Refuses_ports_held_partly_by_another_program()
    {
        using var listener = new System.Net.Sockets.TcpListener(System.Net.IPAddress.Loopback, 0);
        listener.Start();
        var heldPort = ((System.Net.IPEndPoint)listener.LocalEndpoint).Port;
        var options = new AzuriteOptions { BlobPort = heldPort, QueuePort = FreePort(), TablePort = FreePort(), InMemory = true };
        var error = await Assert.ThrowsAsync<InvalidOperationException>(() => AzuriteLauncher.StartAsync(options));
        Assert.Contains(heldPort.ToString(), error.Message);
    }

    [Fact]
    public async Task Starts_its_own_emulator_on_free_ports_and_stops_it_on_dispose()
    {
        var options = new AzuriteOptions { BlobPort = FreePort(), QueuePort = FreePort(), TablePort = FreePort(), InMemory = true };
        var launcher = await AzuriteLauncher.StartAsync(options);
        Assert.True(launcher.StartedHere);
        var service = new BlobServiceClient(launcher.ConnectionString);
        await service.GetBlobContainerClient("own").CreateAsync();
        await launcher.DisposeAsync();
        using var probe = new System.Net.Sockets.TcpClient();
        await Assert.ThrowsAnyAsync<System.Net.Sockets.SocketException>(() => probe.ConnectAsync("127.0.0.1", options.BlobPort));
    }

    private static int FreePort()
    {
        using var listener = new System.Net.Sockets.TcpListener(System.Net.IPAddress.Loopback, 0);
        listener.Start();
        return ((System.Net.IPEndPoint)listener.LocalEndpoint).Port;
    }
}
