using System.Text.Json.Serialization;

namespace BatchRender.Core.Manifests;

/// <summary>One problem in a manifest or schedule: where (a JSON path such as <c>items[3].width</c>, <c>$</c> for the
/// document) and what, in words a person reads in the CLI.</summary>
public sealed record ManifestProblem(
    [property: JsonPropertyName("path")] string Path,
    [property: JsonPropertyName("message")] string Message)
{
    public override string ToString() => $"{Path}: {Message}";

    /// <summary>The same problem seen from an enclosing document: <c>items[0].id</c> under <c>manifest</c> is
    /// <c>manifest.items[0].id</c> (a schedule's inline manifest).</summary>
    public ManifestProblem Under(string parentPath) => this with
    {
        Path = Path == "$" ? parentPath : Path.StartsWith('[') ? parentPath + Path : $"{parentPath}.{Path}",
    };
}

/// <summary>
/// The <c>renders/{jobId}/_job/errors.json</c> document for a manifest that failed validation
/// (<c>{ jobId, source, problems: [{ path, message }], totalProblems, truncated, warnings }</c>).
/// </summary>
public sealed record ManifestErrorsDocument(
    [property: JsonPropertyName("jobId")] string JobId,
    [property: JsonPropertyName("source")] string Source,
    [property: JsonPropertyName("problems")] IReadOnlyList<ManifestProblem> Problems,
    [property: JsonPropertyName("totalProblems")] int TotalProblems,
    [property: JsonPropertyName("truncated")] bool Truncated,
    [property: JsonPropertyName("warnings")] IReadOnlyList<ManifestProblem> Warnings)
{
    public static ManifestErrorsDocument From(ManifestValidationResult result) =>
        new(result.JobId, result.Source, result.Problems, result.TotalProblems, result.Truncated, result.Warnings);
}

internal interface IProblemSink
{
    void Report(string path, string message);
}

/// <summary>Keeps the first <see cref="Capacity"/> problems and counts them all.</summary>
internal sealed class ProblemCollector : IProblemSink
{
    public const int DefaultCapacity = 1_000;
    private readonly List<ManifestProblem> _problems = [];

    public ProblemCollector(int capacity = DefaultCapacity) => Capacity = capacity;

    public int Capacity { get; }
    public int Total { get; private set; }
    public IReadOnlyList<ManifestProblem> Problems => _problems;
    /// <summary>True while more problems would still be listed (callers skip building messages that would be dropped).</summary>
    public bool Listing => _problems.Count < Capacity;

    public void Report(string path, string message)
    {
        Total++;
        if (_problems.Count < Capacity) _problems.Add(new ManifestProblem(path, message));
    }

    /// <summary>Counts problems that are past the listing anyway, without building them.</summary>
    public void CountUnlisted(int count) => Total += count;
}

/// <summary>The second pass reads a manifest the first pass accepted: any problem now means the bytes changed.</summary>
internal sealed class ThrowingProblemSink : IProblemSink
{
    public void Report(string path, string message) =>
        throw new ManifestChangedException($"the manifest no longer reads as it did when it was validated: {path}: {message}");
}

/// <summary>The manifest read in the expansion pass is not the one that was validated.</summary>
public sealed class ManifestChangedException(string message) : Exception(message);
