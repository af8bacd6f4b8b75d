using System.Globalization;
using System.Text.Json.Serialization;
using BatchRender.Core.Manifests;
using Cronos;

namespace BatchRender.Core.Schedules;

/// <summary>Where a schedule's inline <c>manifest</c> object lies in the schedule file, in bytes.</summary>
public sealed record ManifestRange(long Offset, long Length);

/// <summary>A valid schedule (<c>schedules/{name}.json</c>): when it fires and which manifest each occurrence runs.</summary>
public sealed record ScheduleDefinition
{
    public required string Name { get; init; }
    /// <summary>The cron text as written (5 fields, or 6 with seconds first, or a macro such as <c>@daily</c>).</summary>
    public required string Cron { get; init; }
    public required CronExpression Expression { get; init; }
    public required TimeZoneInfo TimeZone { get; init; }
    /// <summary>A blob in the <c>manifests</c> container; its folder is the job's inputs folder.</summary>
    public string? ManifestBlob { get; init; }
    /// <summary>The inline manifest's bytes in the schedule file (read them with <see cref="ScheduleParser.OpenRange"/>).
    /// Its inpaint inputs are relative to the root of the <c>manifests</c> container.</summary>
    public ManifestRange? InlineManifest { get; init; }

    /// <summary>The job an occurrence starts: <c>{name}-{occurrence in UTC as yyyyMMddTHHmmZ}</c>. The same occurrence
    /// always gives the same id, so a timer that fires twice, or two instances, start it once.</summary>
    public string JobIdFor(DateTimeOffset occurrence) =>
        $"{Name}-{occurrence.UtcDateTime.ToString("yyyyMMdd'T'HHmm'Z'", CultureInfo.InvariantCulture)}";

    /// <summary>
    /// Occurrences after <paramref name="lastChecked"/> and up to <paramref name="now"/> (inclusive), in the schedule's
    /// time zone (daylight-saving gaps and overlaps as Cronos handles them: a skipped time fires once right after the
    /// gap, a repeated one fires once). At most <paramref name="max"/> are returned, the earliest first, so a timer
    /// catching up after a long outage works in bounded steps; store <see cref="DueOccurrences.CheckedUntil"/> as the
    /// next <paramref name="lastChecked"/> and nothing is skipped or started twice.
    /// </summary>
    public DueOccurrences DueBetween(DateTimeOffset lastChecked, DateTimeOffset now, int max = 100)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(max, 1);
        if (now <= lastChecked) return new DueOccurrences([], lastChecked, More: false);
        var due = new List<DateTimeOffset>();
        foreach (var occurrence in Expression.GetOccurrences(lastChecked, now, TimeZone, fromInclusive: false, toInclusive: true))
        {
            if (due.Count == max) return new DueOccurrences(due, due[^1], More: true);
            due.Add(occurrence);
        }
        return new DueOccurrences(due, now, More: false);
    }
}

/// <summary>What <see cref="ScheduleDefinition.DueBetween"/> found: the occurrences to start, and the instant checked up
/// to (<paramref name="More"/>: occurrences beyond the cap remain after it).</summary>
public sealed record DueOccurrences(IReadOnlyList<DateTimeOffset> Occurrences, DateTimeOffset CheckedUntil, bool More);

/// <summary>The parse of one schedule file: the definition when valid, else every problem with its JSON path.</summary>
public sealed record ScheduleParseResult
{
    public bool IsValid => TotalProblems == 0;
    /// <summary>The schedule's name (its file name without <c>.json</c>), as written.</summary>
    public required string Name { get; init; }
    /// <summary>A name safe for <c>renders/_schedules/{ReportName}/errors.json</c>, even when <see cref="Name"/> is invalid.</summary>
    public required string ReportName { get; init; }
    public required string Source { get; init; }
    public required IReadOnlyList<ManifestProblem> Problems { get; init; }
    public required int TotalProblems { get; init; }
    public bool Truncated => TotalProblems > Problems.Count;
    public ScheduleDefinition? Schedule { get; init; }

    /// <summary>The blob, in the <c>renders</c> container, where an invalid schedule's report goes.</summary>
    public string ErrorsBlobName => $"_schedules/{ReportName}/errors.json";
}

/// <summary>The <c>renders/_schedules/{name}/errors.json</c> document (<c>{ schedule, source, problems, totalProblems, truncated }</c>).</summary>
public sealed record ScheduleErrorsDocument(
    [property: JsonPropertyName("schedule")] string Schedule,
    [property: JsonPropertyName("source")] string Source,
    [property: JsonPropertyName("problems")] IReadOnlyList<ManifestProblem> Problems,
    [property: JsonPropertyName("totalProblems")] int TotalProblems,
    [property: JsonPropertyName("truncated")] bool Truncated)
{
    public static ScheduleErrorsDocument From(ScheduleParseResult result) =>
        new(result.Name, result.Source, result.Problems, result.TotalProblems, result.Truncated);
}
