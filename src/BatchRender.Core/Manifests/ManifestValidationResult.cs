namespace BatchRender.Core.Manifests;

/// <summary>Where a manifest comes from: its name (blob name or file path: used for a derived job id and in reports) and
/// the folder its inpaint inputs are read from.</summary>
public sealed record ManifestSource(string Name, IManifestInputs Inputs)
{
    /// <summary>The job id a schedule gives each occurrence; the manifest's own <c>jobId</c> is then ignored (with a warning).</summary>
    public string? AssignedJobId { get; init; }

    /// <summary>A manifest file on the local disk, its inputs beside it.</summary>
    public static ManifestSource ForLocalFile(string path) => new(path, LocalFolderManifestInputs.ForManifestFile(path));
}

/// <summary>
/// The first pass over a manifest. <see cref="IsValid"/> is the only go-ahead for expansion; otherwise
/// <see cref="Problems"/> (the first 1,000, each with its JSON path) go to the user and to <c>_job/errors.json</c>
/// (<see cref="ManifestErrorsDocument.From"/>), and nothing is enqueued.
/// </summary>
public sealed record ManifestValidationResult
{
    public bool IsValid => TotalProblems == 0;
    public required IReadOnlyList<ManifestProblem> Problems { get; init; }
    /// <summary>All problems found, listed or not.</summary>
    public required int TotalProblems { get; init; }
    public bool Truncated => TotalProblems > Problems.Count;
    /// <summary>Things that do not stop the job but that its report should carry (a scheduled manifest's ignored <c>jobId</c>).</summary>
    public required IReadOnlyList<ManifestProblem> Warnings { get; init; }
    /// <summary>The job's id: the schedule's, else the manifest's own when valid, else derived from
    /// <see cref="Source"/> and the content hash (so errors.json always has a home).</summary>
    public required string JobId { get; init; }
    public required bool JobIdDerived { get; init; }
    public required int ItemCount { get; init; }
    /// <summary>The model every item renders with (the manifest's, else the configured default).</summary>
    public required string Model { get; init; }
    public required string Source { get; init; }
    /// <summary>SHA-256 of the manifest's bytes, lowercase hex; the expansion pass checks it reads the same bytes.</summary>
    public required string ContentSha256 { get; init; }
    public required long Length { get; init; }
    /// <summary>The manifest's <c>defaults</c> (empty when it has none), for the expansion pass.</summary>
    internal RenderFields Defaults { get; init; } = new();

    /// <summary>One line per listed problem, then how many more there are: what the CLI prints.</summary>
    public IEnumerable<string> Describe()
    {
        foreach (var problem in Problems) yield return problem.ToString();
        if (Truncated) yield return $"... and {TotalProblems - Problems.Count:N0} more problems";
    }
}
