using System.Buffers.Binary;
using System.Runtime.CompilerServices;
using System.Security.Cryptography;
using System.Text;
using BatchRender.Core.Manifests.Json;
using BatchRender.Core.Messages;

namespace BatchRender.Core.Manifests;

/// <summary>
/// Pass two: re-reads a manifest that <see cref="ManifestValidator"/> accepted and yields one
/// <see cref="RenderTaskMessage"/> per item, every default resolved (item, then the manifest's <c>defaults</c>, then the
/// configured <c>Defaults</c>), as a stream: the items are never all in memory.
/// </summary>
public sealed class ManifestExpander(ManifestRules rules)
{
    /// <summary>
    /// Expands <paramref name="manifest"/> (the same bytes that were validated: read the accepted copy, or the blob at
    /// the validated ETag). Inpaint paths become blob names under <paramref name="inputsPrefix"/>, the manifest's folder
    /// in the <c>manifests</c> container (<see cref="FolderOf"/>). Throws <see cref="InvalidOperationException"/> for an
    /// invalid result (nothing is expanded from an invalid manifest) and <see cref="ManifestChangedException"/> when
    /// the bytes differ from the validated ones (detected at the first difference in shape, or at the end by hash).
    /// </summary>
    public async IAsyncEnumerable<RenderTaskMessage> ExpandAsync(Stream manifest, ManifestValidationResult validated, string inputsPrefix,
        [EnumeratorCancellation] CancellationToken cancellationToken = default)
    {
        if (!validated.IsValid)
            throw new InvalidOperationException(
                $"The manifest '{validated.Source}' has {validated.TotalProblems} problem(s); an invalid manifest is never expanded.");
        if (inputsPrefix.Length > 0 && !inputsPrefix.EndsWith('/')) inputsPrefix += "/";

        var sink = new ThrowingProblemSink();
        using var tokens = new JsonTokenStream(manifest, sink, rules.MaxTokenBytes, computeHash: true,
            formatError: (path, message) => new ManifestChangedException($"the manifest no longer reads as it did when it was validated: {path}: {message}"));
        var json = new StrictJsonReader(tokens, sink);
        var fields = new ManifestFieldReader(json, rules);
        var count = 0;

        await json.ReadRootAsync(cancellationToken).ConfigureAwait(false);
        var root = json.BeginObject() ?? throw Changed("it is no longer an object");
        while (await json.NextFieldAsync(root, ManifestFieldSets.Root, cancellationToken).ConfigureAwait(false) is { } name)
        {
            if (name != "items") continue; // the rest was captured by validation; the reader skips it
            var items = json.BeginArray("must be an array") ?? throw Changed("'items' is no longer an array");
            while (await json.NextElementAsync(items, cancellationToken).ConfigureAwait(false))
            {
                var item = await fields.ReadItemAsync(cancellationToken).ConfigureAwait(false) ?? throw Changed($"items[{count}] is no longer an object");
                count++;
                yield return Resolve(item, validated, inputsPrefix);
            }
        }
        await json.ReadToEndAsync(cancellationToken).ConfigureAwait(false);
        if (count != validated.ItemCount) throw Changed($"it has {count} items, not {validated.ItemCount}");
        if (Convert.ToHexStringLower(tokens.GetHashAndReset()) != validated.ContentSha256) throw Changed("its content hash differs");
    }

    /// <summary>The folder of a blob (or file) name, with its trailing '/': <c>campaigns/spring/manifest.json</c> →
    /// <c>campaigns/spring/</c>; a name at the root gives "".</summary>
    public static string FolderOf(string blobName)
    {
        var slash = blobName.LastIndexOf('/');
        return slash < 0 ? "" : blobName[..(slash + 1)];
    }

    /// <summary>
    /// The seed of an item that has none: 63 bits of SHA-256 over the manifest's content hash, job and item. It is
    /// unpredictable per manifest, yet the same on every re-read of the same bytes, so a redelivered blob event or a
    /// timer that fires twice yields the same messages (and the same MessageIds, which duplicate detection needs).
    /// </summary>
    public static long DrawSeed(string contentSha256, string jobId, string itemId)
    {
        Span<byte> digest = stackalloc byte[32];
        SHA256.HashData(Encoding.UTF8.GetBytes($"seed\n{contentSha256}\n{jobId}\n{itemId}"), digest);
        return (long)(BinaryPrimitives.ReadUInt64LittleEndian(digest) & long.MaxValue);
    }

    private RenderTaskMessage Resolve(ItemFields item, ManifestValidationResult validated, string inputsPrefix)
    {
        var defaults = validated.Defaults;
        var configured = rules.Defaults;
        var itemId = item.Id ?? throw Changed("an item has no valid id");
        var seed = item.Seed ?? defaults.Seed;
        var kind = item.Video is not null ? RenderTaskKinds.Video : item.Inpaint is not null ? RenderTaskKinds.Inpaint : RenderTaskKinds.Image;
        var parameters = new RenderTaskParams
        {
            Prompt = item.Prompt ?? throw Changed($"item '{itemId}' has no valid prompt"),
            NegativePrompt = item.NegativePrompt ?? defaults.NegativePrompt ?? configured.NegativePrompt,
            Seed = seed ?? DrawSeed(validated.ContentSha256, validated.JobId, itemId),
            SeedWasRandom = seed is null,
            Width = item.Width ?? defaults.Width ?? configured.Width,
            Height = item.Height ?? defaults.Height ?? configured.Height,
            Steps = item.Steps ?? defaults.Steps ?? configured.Steps,
            GuidanceScale = item.GuidanceScale ?? defaults.GuidanceScale ?? rules.DefaultGuidanceScale(validated.Model),
            Sampler = item.Sampler ?? defaults.Sampler ?? configured.Sampler,
            Quantization = item.Quantization ?? defaults.Quantization ?? configured.Quantization,
            Video = item.Video is { } video
                ? new VideoParams(video.Frames ?? configured.VideoFrames, video.Fps ?? configured.VideoFps, video.MotionScale ?? configured.VideoMotionScale)
                : null,
            Inpaint = item.Inpaint is { Image: { } image, Mask: { } mask } inpaint
                ? new InpaintParams(inputsPrefix + image, inputsPrefix + mask, inpaint.Strength ?? configured.InpaintStrength)
                : null,
        };
        return new RenderTaskMessage(validated.JobId, itemId, validated.Model, kind, parameters);
    }

    private static ManifestChangedException Changed(string what) =>
        new($"the manifest no longer reads as it did when it was validated: {what}");
}
