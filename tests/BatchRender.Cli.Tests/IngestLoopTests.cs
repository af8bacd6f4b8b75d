using Azure.Storage.Blobs;
using BatchRender.Cli.Ingestion;
using BatchRender.Cli.Commands;
using BatchRender.Cli.Tests.Infrastructure;
using BatchRender.Core.Ingestion;
using BatchRender.Core.Tests.Infrastructure;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;

namespace BatchRender.Cli.Tests;

/// <summary>The local stand-in for the blob trigger: a manifest dropped in the container is ingested once.</summary>
[Collection(CliCollection.Name)]
public sealed class IngestLoopTests(AzuriteFixture azurite) : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("batchrender-cli-ingest-").FullName;

    [Fact]
    public async Task A_dropped_manifest_is_ingested_once_and_an_invalid_one_gets_errors_json()
    {
        var configPath = CliHarness.WriteConfig(_dir, azurite);
        var configuration = new ConfigurationBuilder().AddJsonFile(configPath).Build();
        var builder = CliHost.CreateBuilder(configuration);
        IngestCommand.AddLocalIngest(builder.Services, configuration);
        using var host = builder.Build(); // not started: the test drives the polls
        var loop = host.Services.GetRequiredService<LocalIngestService>();
        var results = new List<IngestResult>();
        loop.Ingested += results.Add;

        var manifests = host.Services.GetRequiredService<BlobServiceClient>()
            .GetBlobContainerClient(System.Text.Json.JsonDocument.Parse(File.ReadAllText(configPath)).RootElement
                .GetProperty("Blobs").GetProperty("ManifestsContainer").GetString());
        await manifests.CreateIfNotExistsAsync();
        await manifests.GetBlobClient("campaign/manifest.json").UploadAsync(BinaryData.FromString(Manifests.Images("dropped-job", 2)));
        await manifests.GetBlobClient("broken/manifest.json").UploadAsync(BinaryData.FromString(Manifests.Invalid));

        await loop.PollManifestsAsync(CancellationToken.None);
        await loop.PollManifestsAsync(CancellationToken.None);

        Assert.Equal(2, results.Count);
        var accepted = Assert.Single(results, r => r.Accepted);
        Assert.Equal(("dropped-job", 2), (accepted.JobId, accepted.TasksEnqueued));
        var job = await host.Services.GetRequiredService<IngestionService>().GetStatusAsync("dropped-job");
        Assert.Equal(2, job!.Counts.Queued);
        var renders = host.Services.GetRequiredService<BlobServiceClient>().GetBlobContainerClient(CliHarness.RendersContainer(configPath));
        Assert.True(await renders.GetBlobClient("broken-job/_job/errors.json").ExistsAsync());
    }

    public void Dispose() => Directory.Delete(_dir, recursive: true);
}
