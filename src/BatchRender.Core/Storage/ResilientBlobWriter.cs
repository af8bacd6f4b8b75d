using System.Net.Sockets;
using System.Security.Cryptography;
using Azure;
using Azure.Storage.Blobs;
using Azure.Storage.Blobs.Models;
using BatchRender.Core.Telemetry;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using Polly;
using Polly.Retry;
using Polly.Timeout;

namespace BatchRender.Core.Storage;

public enum BlobWriteOutcome
{
    /// <summary>This call created the blob.</summary>
    Created,
    /// <summary>The blob was already there with the same content (a redelivered task, or a retried write that had landed).</summary>
    AlreadyIdentical,
    /// <summary>Overwrite mode: the blob was replaced.</summary>
    Replaced,
}

public sealed record BlobWriteResult(string BlobName, BlobWriteOutcome Outcome, string Sha256);

/// <summary>A create-only write found the blob there with different content: something else wrote that name.</summary>
public sealed class BlobContentConflictException(string blobName)
    : Exception($"Blob '{blobName}' already exists with different content; it was not overwritten.")
{
    public string BlobName { get; } = blobName;
}

public sealed class BlobWriteResilienceOptions
{
    public int MaxRetryAttempts { get; set; } = 6;
    public TimeSpan BaseDelay { get; set; } = TimeSpan.FromMilliseconds(200);
    public TimeSpan MaxDelay { get; set; } = TimeSpan.FromSeconds(10);
    /// <summary>Each attempt (one HTTP request and its response) gets this long.</summary>
    public TimeSpan AttemptTimeout { get; set; } = TimeSpan.FromSeconds(30);
}

/// <summary>
/// Writes outputs to a container create-only (<c>If-None-Match: *</c>) through a Polly pipeline: retries with
/// exponential backoff and jitter on transient failures (408, 429, 5xx, timeouts, socket errors) and a timeout per
/// attempt. A write that finds the blob already there compares content hashes: identical counts as done (a retry whose
/// first attempt landed, or a redelivered task), different is an error. Polly is the only retry layer: give this
/// writer a client built with <see cref="ClientOptions"/> (the SDK's own retries off).
/// </summary>
public sealed class ResilientBlobWriter
{
    private readonly BlobContainerClient _container;
    private readonly ResiliencePipeline _pipeline;
    private readonly ILogger _logger;
    private readonly Lazy<Task> _containerCreated;

    public ResilientBlobWriter(BlobContainerClient container, BlobWriteResilienceOptions? options = null, ILogger? logger = null)
    {
        _container = container;
        _logger = logger ?? NullLogger.Instance;
        _pipeline = CreatePipeline(options ?? new BlobWriteResilienceOptions(), _logger);
        _containerCreated = new Lazy<Task>(() => _pipeline.ExecuteAsync(
            async ct => await _container.CreateIfNotExistsAsync(cancellationToken: ct), CancellationToken.None).AsTask());
    }

    public BlobContainerClient Container => _container;

    /// <summary>Client options for the writer's client: no SDK retries (Polly retries), a network timeout as a backstop.</summary>
    public static BlobClientOptions ClientOptions(BlobWriteResilienceOptions? options = null)
    {
        var clientOptions = new BlobClientOptions();
        clientOptions.Retry.MaxRetries = 0;
        clientOptions.Retry.NetworkTimeout = (options ?? new BlobWriteResilienceOptions()).AttemptTimeout + TimeSpan.FromSeconds(5);
        return clientOptions;
    }

    public static ResiliencePipeline CreatePipeline(BlobWriteResilienceOptions options, ILogger logger) =>
        new ResiliencePipelineBuilder()
            .AddRetry(new RetryStrategyOptions
            {
                ShouldHandle = new PredicateBuilder().Handle<Exception>(IsTransient),
                BackoffType = DelayBackoffType.Exponential,
                UseJitter = true,
                MaxRetryAttempts = options.MaxRetryAttempts,
                Delay = options.BaseDelay,
                MaxDelay = options.MaxDelay,
                OnRetry = args =>
                {
                    BatchRenderTelemetry.BlobWriteRetries.Add(1);
                    logger.LogDebug(args.Outcome.Exception, "Blob request failed (attempt {Attempt}); retrying in {Delay}",
                        args.AttemptNumber + 1, args.RetryDelay);
                    return default;
                },
            })
            .AddTimeout(options.AttemptTimeout) // inner: per attempt
            .Build();

    /// <summary>Transient: worth trying again. Everything else (400, 403, 404, conflicts) fails at once.</summary>
    public static bool IsTransient(Exception exception) => exception switch
    {
        RequestFailedException { Status: 0 } => true, // no response: connection reset, DNS, socket
        RequestFailedException { Status: 408 or 429 or >= 500 } => true,
        TimeoutRejectedException => true,
        HttpRequestException or SocketException or IOException => true,
        _ when exception.InnerException is { } inner => IsTransient(inner),
        _ => false,
    };

    /// <summary>Writes <paramref name="content"/> to <paramref name="blobName"/> unless it is already there.</summary>
    public Task<BlobWriteResult> WriteAsync(string blobName, BinaryData content, string contentType,
        CancellationToken cancellationToken = default) =>
        WriteAsync(blobName, content, contentType, overwrite: false, cancellationToken);

    /// <summary>
    /// Writes or replaces (job-level files rewritten by a later attempt, such as a schedule's errors). Outputs of
    /// renders always use <see cref="WriteAsync(string, BinaryData, string, CancellationToken)"/>.
    /// </summary>
    public Task<BlobWriteResult> OverwriteAsync(string blobName, BinaryData content, string contentType,
        CancellationToken cancellationToken = default) =>
        WriteAsync(blobName, content, contentType, overwrite: true, cancellationToken);

    private async Task<BlobWriteResult> WriteAsync(string blobName, BinaryData content, string contentType, bool overwrite,
        CancellationToken cancellationToken)
    {
        await _containerCreated.Value.WaitAsync(cancellationToken);
        var bytes = content.ToMemory();
        var md5 = MD5.HashData(bytes.Span);
        var sha256 = Convert.ToHexStringLower(SHA256.HashData(bytes.Span));
        var blob = _container.GetBlobClient(blobName);
        var upload = new BlobUploadOptions
        {
            HttpHeaders = new BlobHttpHeaders { ContentType = contentType, ContentHash = md5 },
            Metadata = new Dictionary<string, string> { ["sha256"] = sha256 },
            Conditions = overwrite ? null : new BlobRequestConditions { IfNoneMatch = ETag.All },
            // One request per attempt, so a retried attempt is the whole write again.
            TransferOptions = new Azure.Storage.StorageTransferOptions { InitialTransferSize = 256 * 1024 * 1024, MaximumTransferSize = 256 * 1024 * 1024 },
        };

        var outcome = await _pipeline.ExecuteAsync(async ct =>
        {
            try
            {
                await blob.UploadAsync(content, upload, ct);
                return overwrite ? BlobWriteOutcome.Replaced : BlobWriteOutcome.Created;
            }
            catch (RequestFailedException e) when (!overwrite && e.Status is 409 or 412)
            {
                // Already there (maybe our own earlier attempt whose response was lost): same bytes = done.
                if (await HasContentAsync(blob, md5, sha256, bytes.Length, ct)) return BlobWriteOutcome.AlreadyIdentical;
                throw new BlobContentConflictException(blobName);
            }
        }, cancellationToken);

        BatchRenderTelemetry.BlobWrites.Add(1, new KeyValuePair<string, object?>("outcome", outcome.ToString()));
        return new BlobWriteResult(blobName, outcome, sha256);
    }

    private static async Task<bool> HasContentAsync(BlobClient blob, byte[] md5, string sha256, int length, CancellationToken ct)
    {
        BlobProperties properties = await blob.GetPropertiesAsync(cancellationToken: ct);
        if (properties.ContentLength != length) return false;
        if (properties.Metadata.TryGetValue("sha256", out var stored)) return stored == sha256;
        if (properties.ContentHash is { Length: > 0 } hash) return hash.AsSpan().SequenceEqual(md5);
        // Written by another tool without hashes: compare the bytes themselves.
        var existing = (await blob.DownloadContentAsync(ct)).Value.Content;
        return Convert.ToHexStringLower(SHA256.HashData(existing.ToMemory().Span)) == sha256;
    }

    /// <summary>
    /// Writes a large blob create-only from a stream opened afresh for each attempt (uploaded in blocks: memory stays
    /// flat), identified by its known SHA-256 (<paramref name="sha256"/>, lowercase hex) for the identical-content check.
    /// </summary>
    public async Task<BlobWriteResult> WriteStreamAsync(string blobName, Func<CancellationToken, Task<Stream>> open, string sha256,
        string contentType, CancellationToken cancellationToken = default)
    {
        await _containerCreated.Value.WaitAsync(cancellationToken);
        var blob = _container.GetBlobClient(blobName);
        var upload = new BlobUploadOptions
        {
            HttpHeaders = new BlobHttpHeaders { ContentType = contentType },
            Metadata = new Dictionary<string, string> { ["sha256"] = sha256 },
            Conditions = new BlobRequestConditions { IfNoneMatch = ETag.All },
            TransferOptions = new Azure.Storage.StorageTransferOptions
            {
                InitialTransferSize = 4 * 1024 * 1024, MaximumTransferSize = 4 * 1024 * 1024, MaximumConcurrency = 2,
            },
        };
        var outcome = await _pipeline.ExecuteAsync(async ct =>
        {
            await using var content = await open(ct);
            try
            {
                await blob.UploadAsync(content, upload, ct);
                return BlobWriteOutcome.Created;
            }
            catch (RequestFailedException e) when (e.Status is 409 or 412)
            {
                BlobProperties properties = await blob.GetPropertiesAsync(cancellationToken: ct);
                if (properties.Metadata.TryGetValue("sha256", out var stored) && stored == sha256) return BlobWriteOutcome.AlreadyIdentical;
                throw new BlobContentConflictException(blobName);
            }
        }, cancellationToken);
        BatchRenderTelemetry.BlobWrites.Add(1, new KeyValuePair<string, object?>("outcome", outcome.ToString()));
        return new BlobWriteResult(blobName, outcome, sha256);
    }

    /// <summary>Reads a blob through the same retry pipeline; null when it does not exist.</summary>
    public async Task<BinaryData?> ReadAsync(string blobName, CancellationToken cancellationToken = default)
    {
        await _containerCreated.Value.WaitAsync(cancellationToken);
        return await _pipeline.ExecuteAsync(async ct =>
        {
            try
            {
                return (await _container.GetBlobClient(blobName).DownloadContentAsync(ct)).Value.Content;
            }
            catch (RequestFailedException e) when (e.Status == 404)
            {
                return null;
            }
        }, cancellationToken);
    }

    public async Task<bool> ExistsAsync(string blobName, CancellationToken cancellationToken = default)
    {
        await _containerCreated.Value.WaitAsync(cancellationToken);
        return await _pipeline.ExecuteAsync(async ct => (bool)await _container.GetBlobClient(blobName).ExistsAsync(ct), cancellationToken);
    }
}
