using System.Security.Cryptography;
using Azure.Core;
using Azure.Storage.Blobs;
using BatchRender.Core.Storage;
using BatchRender.Core.Tests.Infrastructure;

namespace BatchRender.Core.Tests.Storage;

public sealed class ResilientBlobWriterTests(AzuriteFixture azurite) : IClassFixture<AzuriteFixture>
{
    private static readonly BlobWriteResilienceOptions FastRetries = new()
    {
        MaxRetryAttempts = 10, BaseDelay = TimeSpan.FromMilliseconds(10), MaxDelay = TimeSpan.FromMilliseconds(100),
        AttemptTimeout = TimeSpan.FromMilliseconds(1500),
    };

    private ResilientBlobWriter Writer(string container, FaultInjectionPolicy? faults = null)
    {
        var options = ResilientBlobWriter.ClientOptions(FastRetries);
        if (faults is not null) options.AddPolicy(faults, HttpPipelinePosition.PerRetry);
        return new ResilientBlobWriter(new BlobServiceClient(azurite.ConnectionString, options).GetBlobContainerClient(container), FastRetries);
    }

    private static BinaryData Content(int i) => BinaryData.FromBytes(SHA256.HashData(BitConverter.GetBytes(i)).Concat(new byte[1000 + i]).ToArray());

    [Fact]
    public async Task Creates_a_blob_then_counts_an_identical_write_as_done_and_refuses_different_content()
    {
        var writer = Writer(AzuriteFixture.UniqueName("writes"));
        var first = await writer.WriteAsync("job/a.png", Content(1), "image/png");
        Assert.Equal(BlobWriteOutcome.Created, first.Outcome);

        var again = await writer.WriteAsync("job/a.png", Content(1), "image/png");
        Assert.Equal(BlobWriteOutcome.AlreadyIdentical, again.Outcome);
        Assert.Equal(first.Sha256, again.Sha256);

        var conflict = await Assert.ThrowsAsync<BlobContentConflictException>(() => writer.WriteAsync("job/a.png", Content(2), "image/png"));
        Assert.Equal("job/a.png", conflict.BlobName);
        Assert.Equal(Content(1).ToArray(), (await writer.ReadAsync("job/a.png"))!.ToArray());

        var properties = (await writer.Container.GetBlobClient("job/a.png").GetPropertiesAsync()).Value;
        Assert.Equal("image/png", properties.ContentType);
    }

    [Fact]
    public async Task Overwrite_replaces_and_read_of_a_missing_blob_is_null()
    {
        var writer = Writer(AzuriteFixture.UniqueName("writes"));
        await writer.WriteAsync("j/_job/errors.json", BinaryData.FromString("[1]"), "application/json");
        Assert.Equal(BlobWriteOutcome.Replaced, (await writer.OverwriteAsync("j/_job/errors.json", BinaryData.FromString("[2]"), "application/json")).Outcome);
        Assert.Equal("[2]", (await writer.ReadAsync("j/_job/errors.json"))!.ToString());
        Assert.Null(await writer.ReadAsync("j/missing.json"));
        Assert.False(await writer.ExistsAsync("j/missing.json"));
    }

    [Fact]
    public async Task Under_injected_503s_and_timeouts_N_writes_make_exactly_N_intact_blobs()
    {
        var container = AzuriteFixture.UniqueName("faults");
        // Fail only the uploads and the follow-up reads, not container creation, so the fault count is about writes.
        var faults = new FaultInjectionPolicy(failureRate: 0.3, seed: 1234) { Applies = m => m.Request.Uri.Path.Count(c => c == '/') > 2 };
        var writer = Writer(container, faults);
        const int n = 60;

        var results = await Task.WhenAll(Enumerable.Range(0, n).Select(i => writer.WriteAsync($"job/item-{i:D3}.png", Content(i), "image/png")));
        Assert.True(faults.Injected >= 10, $"only {faults.Injected} faults were injected");
        Assert.All(results, r => Assert.NotEqual(BlobWriteOutcome.Replaced, r.Outcome));
        // A timeout or a lost response after the write landed makes the retry find its own blob: counted as done.
        Assert.Contains(results, r => r.Outcome == BlobWriteOutcome.AlreadyIdentical);

        var clean = new BlobServiceClient(azurite.ConnectionString).GetBlobContainerClient(container);
        var names = new List<string>();
        await foreach (var blob in clean.GetBlobsAsync(Azure.Storage.Blobs.Models.BlobTraits.None, Azure.Storage.Blobs.Models.BlobStates.None, "job/", CancellationToken.None)) names.Add(blob.Name);
        Assert.Equal(Enumerable.Range(0, n).Select(i => $"job/item-{i:D3}.png"), names.Order());
        for (var i = 0; i < n; i++)
        {
            var bytes = (await clean.GetBlobClient($"job/item-{i:D3}.png").DownloadContentAsync()).Value.Content.ToArray();
            Assert.Equal(Content(i).ToArray(), bytes);
            Assert.Equal(results[i].Sha256, Convert.ToHexStringLower(SHA256.HashData(bytes)));
        }
    }

    [Fact]
    public async Task A_permanent_error_fails_at_once_without_retries()
    {
        var counter = new FaultInjectionPolicy(failureRate: 0, seed: 1);
        var writer = Writer("Invalid_Container_Name", counter); // a 400 from the service: retrying cannot help
        var error = await Assert.ThrowsAsync<Azure.RequestFailedException>(() => writer.WriteAsync("a.png", Content(1), "image/png"));
        Assert.Equal(400, error.Status);
        Assert.Equal(1, counter.Seen);
    }

    [Theory]
    [InlineData(503, true)]
    [InlineData(500, true)]
    [InlineData(429, true)]
    [InlineData(408, true)]
    [InlineData(0, true)]
    [InlineData(404, false)]
    [InlineData(403, false)]
    [InlineData(409, false)]
    public void Classifies_status_codes(int status, bool transient) =>
        Assert.Equal(transient, ResilientBlobWriter.IsTransient(new Azure.RequestFailedException(status, "x")));
}
