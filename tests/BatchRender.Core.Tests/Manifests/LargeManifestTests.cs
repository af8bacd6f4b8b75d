using System.Diagnostics;
using BatchRender.Core.Manifests;
using Xunit.Abstractions;

namespace BatchRender.Core.Tests.Manifests;

/// <summary>100k items, validated and expanded as streams; memory measured mid-stream against a manifest 5x smaller.</summary>
public sealed class LargeManifestTests(ITestOutputHelper output) : IDisposable
{
    private const int Items = 100_000;
    private const int PromptLength = 120;
    private readonly ManifestTestKit _kit = new();

    [Fact]
    public async Task A_100k_item_manifest_is_validated_and_expanded_as_a_stream()
    {
        var clock = Stopwatch.StartNew();
        var result = await _kit.Validator.ValidateAsync(new GeneratedManifestStream(Items, PromptLength), new ManifestSource("big.json", _kit.Inputs));
        var validated = clock.Elapsed;

        Assert.True(result.IsValid, string.Join("\n", result.Describe().Take(5)));
        Assert.Equal(Items, result.ItemCount);
        Assert.True(result.Length > Items * (long)PromptLength, $"the manifest is {result.Length:N0} bytes");

        clock.Restart();
        var count = 0;
        var ids = new HashSet<string>();
        await foreach (var message in _kit.Expander.ExpandAsync(new GeneratedManifestStream(Items, PromptLength), result, ""))
        {
            if (count % 1000 == 0)
            {
                Assert.Equal($"item-{count}", message.ItemId);
                Assert.Equal(10, message.Params.Steps);
                Assert.True(ids.Add(message.ComputeMessageId()));
            }
            if (count == 1) Assert.Equal((1L, false, 64, 96), (message.Params.Seed, message.Params.SeedWasRandom, message.Params.Width, message.Params.Height));
            if (count == 2) Assert.Equal(4, message.Params.Video!.Frames);
            count++;
        }
        Assert.Equal(Items, count);
        output.WriteLine($"{result.Length / 1e6:F1} MB: validated in {validated.TotalSeconds:F2} s, expanded in {clock.Elapsed.TotalSeconds:F2} s");
    }

    [Fact]
    public async Task Validation_memory_does_not_grow_with_the_bytes_of_the_manifest()
    {
        var small = await LiveHeapMidStreamAsync(Items / 5);
        var large = await LiveHeapMidStreamAsync(Items);
        var extraItems = Items - Items / 5;
        var extraBytes = extraItems * (PromptLength + 40L) * 1.3; // UTF-8 Chinese takes 3 bytes a character
        output.WriteLine($"live heap 90% through: {small / 1e6:F1} MB at {Items / 5:N0} items, {large / 1e6:F1} MB at {Items:N0} items " +
                         $"(the extra items are ~{extraBytes / 1e6:F0} MB of JSON)");
        // What may grow: 16-byte id hashes in a dictionary (~40 bytes an item with its overhead). Not the prompts.
        Assert.True(large - small < extraItems * 64L + (4 << 20), $"grew by {(large - small) / 1e6:F1} MB for {extraItems:N0} more items");
    }

    private async Task<long> LiveHeapMidStreamAsync(int items)
    {
        long live = 0;
        var stream = new GeneratedManifestStream(items, PromptLength, 0.9, () => live = GC.GetTotalMemory(forceFullCollection: true));
        var result = await _kit.Validator.ValidateAsync(stream, new ManifestSource("big.json", _kit.Inputs));
        Assert.True(result.IsValid);
        Assert.True(live > 0);
        return live;
    }

    public void Dispose() => _kit.Dispose();
}
