using BatchRender.Core.Manifests;

namespace BatchRender.Core.Tests.Manifests;

/// <summary>
/// Mutated copies of the sample (truncated, bytes flipped, inserted or deleted, with a fixed random seed): validation
/// must always return a result, never throw, and whatever it accepts must expand without error.
/// </summary>
public sealed class ManifestFuzzTests : IDisposable
{
    private readonly ManifestTestKit _kit = new();

    [Fact]
    public async Task Mutated_manifests_never_crash_the_validator_and_accepted_ones_expand()
    {
        var sample = File.ReadAllBytes(ManifestTestKit.TestData("Manifests", "sample.json"));
        var random = new Random(20261125);
        byte[] interesting = [(byte)'"', (byte)'\\', (byte)'{', (byte)'}', (byte)'[', (byte)']', (byte)',', (byte)':', 0, 0x80, 0xC3, 0xED, 0xFF, (byte)'u', (byte)'1', (byte)'-', (byte)'.', (byte)'e'];
        var accepted = 0;
        for (var round = 0; round < 1500; round++)
        {
            var bytes = sample.ToList();
            for (var edits = random.Next(1, 4); edits > 0 && bytes.Count > 0; edits--)
            {
                var at = random.Next(bytes.Count);
                var b = random.Next(2) == 0 ? interesting[random.Next(interesting.Length)] : (byte)random.Next(256);
                switch (random.Next(4))
                {
                    case 0: bytes.RemoveRange(at, bytes.Count - at); break;
                    case 1: bytes[at] = b; break;
                    case 2: bytes.Insert(at, b); break;
                    default: bytes.RemoveAt(at); break;
                }
            }
            var mutated = bytes.ToArray();

            var result = await _kit.ValidateAsync(mutated, "campaigns/fuzz.json");

            Assert.True(ManifestIds.IsValid(result.JobId));
            Assert.Equal(result.IsValid, result.Problems.Count == 0);
            if (!result.IsValid) continue;
            accepted++;
            var messages = await _kit.ExpandAsync(mutated, result, "campaigns/");
            Assert.Equal(result.ItemCount, messages.Count);
        }
        Assert.InRange(accepted, 1, 1499); // some mutations only touch text, most break something
    }

    public void Dispose() => _kit.Dispose();
}
