using BatchRender.Core.Manifests;

namespace BatchRender.Core.Schedules;

/// <summary>What <c>batchrender validate --schedule FILE</c> reports: the schedule's own problems, then those of its
/// inline manifest (paths under <c>manifest.</c>), checked as the next occurrence's job would check it.</summary>
public sealed record ScheduleCheckResult(ScheduleParseResult Schedule, ManifestValidationResult? Manifest)
{
    public bool IsValid => Schedule.IsValid && (Manifest?.IsValid ?? true);

    public IReadOnlyList<ManifestProblem> Problems =>
        [.. Schedule.Problems, .. Manifest?.Problems.Select(p => p.Under("manifest")) ?? []];

    public IReadOnlyList<ManifestProblem> Warnings => Manifest?.Warnings.Select(p => p.Under("manifest")).ToArray() ?? [];

    public int TotalProblems => Schedule.TotalProblems + (Manifest?.TotalProblems ?? 0);
}

public static class LocalScheduleCheck
{
    /// <summary>
    /// Parses a schedule file and, when it holds its manifest inline, validates that manifest with the job id of the
    /// schedule's next occurrence after <paramref name="now"/> (its inputs relative to the schedule file's folder, as
    /// for any local manifest). A <c>manifestBlob</c> names a blob in Azure and is not fetched here.
    /// </summary>
    public static async Task<ScheduleCheckResult> CheckFileAsync(string path, ScheduleParser parser, ManifestValidator validator,
        DateTimeOffset now, CancellationToken cancellationToken = default)
    {
        await using var file = File.OpenRead(path);
        var schedule = await parser.ParseAsync(file, Path.GetFileName(path), cancellationToken).ConfigureAwait(false);
        if (schedule.Schedule is not { InlineManifest: { } range } definition) return new ScheduleCheckResult(schedule, null);

        var next = definition.Expression.GetNextOccurrence(now, definition.TimeZone) ?? now;
        await using var manifest = ScheduleParser.OpenRange(file, range);
        var source = ManifestSource.ForLocalFile(path) with { AssignedJobId = definition.JobIdFor(next) };
        var validated = await validator.ValidateAsync(manifest, source, cancellationToken).ConfigureAwait(false);
        return new ScheduleCheckResult(schedule, validated);
    }
}
