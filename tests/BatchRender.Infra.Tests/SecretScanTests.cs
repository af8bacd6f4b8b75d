using System.Security.Cryptography;
using System.Text;
using System.Text.RegularExpressions;

namespace BatchRender.Infra.Tests;

/// <summary>No credential is committed anywhere in the repository (tracked files).</summary>
public class SecretScanTests
{
    private static readonly (string What, Regex Pattern)[] Secrets =
    [
        ("a storage account key", new(@"AccountKey\s*=\s*[A-Za-z0-9+/]{20,}", RegexOptions.IgnoreCase)),
        ("a Service Bus / Event Hubs SAS key", new(@"SharedAccessKey\s*=\s*[A-Za-z0-9+/]{20,}", RegexOptions.IgnoreCase)),
        ("a SAS token signature", new(@"[?&]sig=[A-Za-z0-9%+/]{20,}")),
        ("a private key", new(@"-----BEGIN (RSA |EC |DSA |OPENSSH |ENCRYPTED )?PRIVATE KEY-----")),
        ("an Application Insights instrumentation key", new(@"InstrumentationKey\s*=\s*[0-9a-f]{8}-[0-9a-f]{4}-", RegexOptions.IgnoreCase)),
        ("a client secret", new(@"client_?secret""?\s*[:=]\s*""?[A-Za-z0-9~._-]{30,}", RegexOptions.IgnoreCase)),
        ("a GitHub token", new(@"\bgh[pousr]_[A-Za-z0-9]{36,}\b")),
        ("an AWS access key", new(@"\bAKIA[0-9A-Z]{16}\b")),
        // 64 random bytes in base64, as storage account keys are (not an npm/NuGet "sha512-..." integrity hash).
        ("a storage-key-shaped string", new(@"(?<![A-Za-z0-9+/-])[A-Za-z0-9+/]{86}==")),
    ];

    /// <summary>SHA-256 of the keys that are public by design: Azurite's documented development account key
    /// (the emulator constant in src/BatchRender.Core/Local). Only hashes here, so this file holds no key.</summary>
    private static readonly HashSet<string> PublicKeys = ["0011cc25eb4320717494d2703e8cba85743e71b500283c21c8b88147992f9059"];

    private static bool IsPublic(string match) =>
        PublicKeys.Contains(Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(match))));

    [Fact]
    public async Task Tracked_files_contain_no_secrets()
    {
        var git = ProcessRunner.Which("git") ?? throw new InvalidOperationException("git is not on PATH");
        var listing = await ProcessRunner.RunAsync(git, ["ls-files", "-z", "--cached", "--others", "--exclude-standard"], Repo.Root, TimeSpan.FromMinutes(1));
        Assert.True(listing.ExitCode == 0, listing.Describe("git ls-files"));
        var files = listing.StdOut.Split('\0', StringSplitOptions.RemoveEmptyEntries);
        Assert.NotEmpty(files);

        var findings = new List<string>();
        foreach (var file in files)
        {
            var path = Repo.Path(file);
            if (!File.Exists(path) || new FileInfo(path).Length > 5_000_000) continue;
            var bytes = await File.ReadAllBytesAsync(path);
            if (bytes.AsSpan(0, Math.Min(bytes.Length, 8000)).IndexOf((byte)0) >= 0) continue; // binary
            var lines = Encoding.UTF8.GetString(bytes).Split('\n');
            for (var i = 0; i < lines.Length; i++)
                foreach (var (what, pattern) in Secrets)
                    if (pattern.Matches(lines[i]).Any(m => !IsPublic(m.Value)))
                        findings.Add($"{file}:{i + 1}: {what}");
        }
        Assert.True(findings.Count == 0,
            "Secrets in the repository (use managed identity, or UseDevelopmentStorage=true for Azurite):\n" + string.Join('\n', findings));
    }

    [Fact]
    public void The_scanner_recognises_what_it_looks_for()
    {
        // Assembled at run time so that this file itself holds no secret-shaped text.
        var key = new string('Q', 40) + "==";
        string[] samples =
        [
            "DefaultEndpointsProtocol=https;AccountName=x;Account" + "Key=" + key,
            "Endpoint=sb://x/;SharedAccessKeyName=root;SharedAccess" + "Key=" + key,
            "https://x.blob.core.windows.net/c/b?sv=2024&s" + "ig=" + new string('a', 30),
            "-----BEGIN " + "PRIVATE KEY-----",
            "var key = \"" + new string('K', 86) + "==\";",
        ];
        foreach (var sample in samples)
            Assert.Contains(Secrets, s => s.Pattern.IsMatch(sample));
        Assert.DoesNotContain(Secrets, s => s.Pattern.IsMatch("UseDevelopmentStorage=true"));
        Assert.DoesNotContain(Secrets, s => s.Pattern.IsMatch("\"integrity\": \"sha512-" + new string('I', 86) + "==\""));
    }
}
