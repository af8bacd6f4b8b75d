using System.Text;
using System.Text.RegularExpressions;

namespace BatchRender.Core.Manifests;

/// <summary>
/// Job and item ids (DESIGN.md): <c>^[A-Za-z0-9](?:[A-Za-z0-9._-]{0,126}[A-Za-z0-9])?$</c>. They become blob name
/// segments (<c>renders/{jobId}/{itemId}.png</c>), so <c>.</c>, <c>..</c>, <c>_job</c>, a leading <c>-</c> or a trailing
/// <c>.</c> can never be one.
/// </summary>
public static partial class ManifestIds
{
    public const string Pattern = "^[A-Za-z0-9](?:[A-Za-z0-9._-]{0,126}[A-Za-z0-9])?$";
    public const int MaxLength = 128;

    [GeneratedRegex(Pattern, RegexOptions.CultureInvariant)]
    private static partial Regex IdRegex();

    public static bool IsValid(string? id) => id is not null && IdRegex().IsMatch(id);

    /// <summary>Why <paramref name="id"/> is not a valid id, in words; null when it is valid.</summary>
    public static string? Explain(string id)
    {
        if (IsValid(id)) return null;
        const string rule = "ids use letters, digits, '.', '_' and '-', start and end with a letter or digit, and are at most 128 characters";
        if (id.Length == 0) return "must not be empty; " + rule;
        if (id.Length > MaxLength) return $"is {id.Length} characters long; " + rule;
        for (var i = 0; i < id.Length; i++)
        {
            var c = id[i];
            if (!(char.IsAsciiLetterOrDigit(c) || c is '.' or '_' or '-'))
            {
                var shown = char.IsControl(c) || char.IsWhiteSpace(c) ? $"U+{(int)c:X4}" : $"'{c}'";
                return $"contains {shown} at position {i + 1}; " + rule;
            }
        }
        return !char.IsAsciiLetterOrDigit(id[0])
            ? $"starts with '{id[0]}'; " + rule
            : $"ends with '{id[^1]}'; " + rule;
    }

    /// <summary>
    /// The job id of a manifest that has no valid one of its own: its file name made safe, then the first 12 hex digits
    /// of its content hash (<c>Spring batch (2).json</c> → <c>Spring-batch-2-3fa9c0d1e2b4</c>), so the same bytes under the
    /// same name always give the same job.
    /// </summary>
    public static string Derive(string sourceName, string contentSha256Hex)
    {
        var hash = contentSha256Hex[..12].ToLowerInvariant();
        var stem = Sanitize(StemOf(sourceName), MaxLength - hash.Length - 1);
        return stem.Length == 0 ? $"manifest-{hash}" : $"{stem}-{hash}";
    }

    /// <summary>Text made into an id: runs of disallowed characters become one '-', the ends trimmed to a letter or digit.</summary>
    public static string Sanitize(string text, int maxLength = MaxLength)
    {
        var sb = new StringBuilder(Math.Min(text.Length, maxLength));
        foreach (var c in text)
        {
            var ok = char.IsAsciiLetterOrDigit(c) || c is '.' or '_' or '-';
            if (ok) sb.Append(c);
            else if (sb.Length > 0 && sb[^1] != '-') sb.Append('-');
            if (sb.Length >= maxLength) break;
        }
        var s = sb.ToString();
        var start = 0;
        while (start < s.Length && !char.IsAsciiLetterOrDigit(s[start])) start++;
        var end = s.Length;
        while (end > start && !char.IsAsciiLetterOrDigit(s[end - 1])) end--;
        return s[start..end];
    }

    private static string StemOf(string sourceName)
    {
        var name = sourceName[(sourceName.LastIndexOfAny(['/', '\\']) + 1)..];
        return name.EndsWith(".json", StringComparison.OrdinalIgnoreCase) ? name[..^5] : name;
    }
}
