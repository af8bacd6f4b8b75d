using Azure;
using Azure.Storage.Blobs;
using Azure.Storage.Blobs.Models;
using BatchRender.Core.Manifests;

namespace BatchRender.Core.Ingestion;

/// <summary>
/// Inpaint inputs of a manifest in the <c>manifests</c> container: blobs under the manifest's own folder
/// (<paramref name="folder"/>, e.g. <c>campaigns/spring/</c>). A path that would leave the folder is refused.
/// </summary>
public sealed class BlobManifestInputs(BlobContainerClient manifests, string folder) : IManifestInputs
{
    public async Task<InputCheck> CheckAsync(string relativePath, CancellationToken cancellationToken)
    {
        var segments = relativePath.Split('/');
        if (relativePath.Length == 0 || relativePath.Contains('\\') || segments.Any(s => s is "" or "." or ".."))
            return InputCheck.Refused($"'{relativePath}' does not name a file inside the manifest's folder");
        try
        {
            var download = await manifests.GetBlobClient(folder + relativePath).DownloadContentAsync(
                new BlobDownloadOptions { Range = new HttpRange(0, InputCheck.HeaderLength) }, cancellationToken);
            return InputCheck.Found(download.Value.Content.ToMemory());
        }
        catch (RequestFailedException e) when (e.Status == 404)
        {
            return InputCheck.Missing;
        }
        catch (RequestFailedException e) when (e.Status == 416)
        {
            return InputCheck.Found(ReadOnlyMemory<byte>.Empty); // an empty blob: the validator says what is wrong with it
        }
    }
}
