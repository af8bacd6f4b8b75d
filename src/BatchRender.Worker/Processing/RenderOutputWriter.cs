using System.Security.Cryptography;
using BatchRender.Core.Messages;
using BatchRender.Core.Storage;
using BatchRender.Worker.Rendering;
using Microsoft.Extensions.Logging;

namespace BatchRender.Worker.Processing;

/// <summary>
/// Writes one rendered item to <c>renders</c>: the PNG (or the frames and the preview) first, the sidecar last, all
/// create-only through the resilient writer, so an output that is already there with the same bytes counts as written.
/// Until the item's state says done, its outputs are provisional: a leftover of an interrupted attempt with other bytes
/// (a render on other hardware is not bit-identical) is replaced, so the sidecar always describes what is stored.
/// </summary>
public sealed class RenderOutputWriter(ResilientBlobWriter writer, ILogger<RenderOutputWriter> logger)
{
    public const string PngType = "image/png";
    public const string GifType = "image/gif";
    public const string JsonType = "application/json; charset=utf-8";

    /// <summary>Writes the outputs and the sidecar; returns the sidecar as stored.</summary>
    public async Task<RenderSidecar> WriteAsync(RenderTaskMessage task, RenderedOutput output, WorkerIdentity worker, int deliveryCount,
        CancellationToken cancellationToken)
    {
        var outputs = new List<SidecarOutput>();
        if (output.FramePngs is { Count: > 0 } frames)
        {
            // Frames in parallel: a 240-frame video is 240 round trips.
            var written = new SidecarOutput[frames.Count];
            await Parallel.ForEachAsync(Enumerable.Range(0, frames.Count),
                new ParallelOptions { MaxDegreeOfParallelism = 8, CancellationToken = cancellationToken },
                async (i, ct) => written[i] = await WriteOutputAsync(BlobLayout.Frame(task.JobId, task.ItemId, i), frames[i], PngType, ct));
            outputs.AddRange(written);
            if (output.PreviewGif is { } gif)
                outputs.Add(await WriteOutputAsync(BlobLayout.Preview(task.JobId, task.ItemId), gif, GifType, cancellationToken));
        }
        else
        {
            outputs.Add(await WriteOutputAsync(BlobLayout.Image(task.JobId, task.ItemId), output.Png, PngType, cancellationToken));
        }

        var sidecar = RenderSidecar.For(task, output, worker.Id, deliveryCount, outputs);
        return await WriteSidecarAsync(BlobLayout.Sidecar(task.JobId, task.ItemId), sidecar, cancellationToken);
    }

    private async Task<SidecarOutput> WriteOutputAsync(string blobName, byte[] bytes, string contentType, CancellationToken ct)
    {
        var content = BinaryData.FromBytes(bytes);
        BlobWriteResult result;
        try
        {
            result = await writer.WriteAsync(blobName, content, contentType, ct);
        }
        catch (BlobContentConflictException)
        {
            logger.LogWarning("Output {Blob} was left by an interrupted attempt with other content; replacing it", blobName);
            result = await writer.OverwriteAsync(blobName, content, contentType, ct);
        }
        return new SidecarOutput(blobName, contentType, bytes.LongLength, result.Sha256);
    }

    private async Task<RenderSidecar> WriteSidecarAsync(string blobName, RenderSidecar sidecar, CancellationToken ct)
    {
        try
        {
            await writer.WriteAsync(blobName, sidecar.ToBinaryData(), JsonType, ct);
            return sidecar;
        }
        catch (BlobContentConflictException)
        {
            // A sidecar is never byte-identical across attempts (timings, worker): the earlier one stands when it
            // describes the same outputs, otherwise ours (describing what was just written) replaces it.
            var existing = await writer.ReadAsync(blobName, ct) is { } data ? TryParse(data) : null;
            if (existing is not null && existing.Outputs.Select(o => (o.Blob, o.Sha256)).SequenceEqual(sidecar.Outputs.Select(o => (o.Blob, o.Sha256))))
                return existing;
            logger.LogWarning("Sidecar {Blob} described other outputs; replacing it", blobName);
            await writer.OverwriteAsync(blobName, sidecar.ToBinaryData(), JsonType, ct);
            return sidecar;
        }
    }

    private static RenderSidecar? TryParse(BinaryData data)
    {
        try { return RenderSidecar.Parse(data); }
        catch (System.Text.Json.JsonException) { return null; }
    }

    public static string Sha256(ReadOnlySpan<byte> bytes) => Convert.ToHexStringLower(SHA256.HashData(bytes));
}
