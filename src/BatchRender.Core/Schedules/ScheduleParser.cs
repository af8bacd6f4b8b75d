using System.Globalization;
using BatchRender.Core.Manifests;
using BatchRender.Core.Manifests.Json;
using Cronos;

namespace BatchRender.Core.Schedules;

/// <summary>
/// Reads <c>schedules/{name}.json</c> (DESIGN.md "Schedules") as strictly as a manifest, with the same reader: unknown
/// fields, nulls, duplicate keys and wrong types are problems with their paths. The inline manifest is located, not
/// validated here: each occurrence validates it as its job's manifest, exactly as a <c>manifestBlob</c> is.
/// </summary>
public sealed class ScheduleParser(ManifestRules rules)
{
    /// <summary>A schedule name leaves room for <c>-yyyyMMddTHHmmZ</c> within the 128 characters of a job id.</summary>
    public const int MaxNameLength = ManifestIds.MaxLength - 15;

    private static readonly FieldSet Fields = new("a schedule", ["cron", "timeZone", "manifest", "manifestBlob"], required: ["cron"],
        hints: new Dictionary<string, string>
        {
            ["items"] = "a schedule holds its manifest in 'manifest' ({ \"schemaVersion\": 1, \"items\": [...] }) or names one in 'manifestBlob'",
            ["schemaVersion"] = "'schemaVersion' belongs to the manifest, inside 'manifest'",
            ["timezone"] = "the field is 'timeZone'",
        });

    /// <summary>The schedule's name from its blob name in the <c>schedules</c> container (<c>nightly.json</c> → <c>nightly</c>).</summary>
    public static string NameOf(string blobName)
    {
        var file = blobName[(blobName.LastIndexOf('/') + 1)..];
        return file.EndsWith(".json", StringComparison.Ordinal) ? file[..^5] : file;
    }

    public async Task<ScheduleParseResult> ParseAsync(Stream schedule, string blobName, CancellationToken cancellationToken = default)
    {
        var problems = new ProblemCollector();
        var name = NameOf(blobName);
        CheckName(blobName, name, problems);

        using var tokens = new JsonTokenStream(schedule, problems, rules.MaxTokenBytes, computeHash: false);
        var json = new StrictJsonReader(tokens, problems);
        string? cron = null, timeZoneId = null, manifestBlob = null;
        CronExpression? expression = null;
        TimeZoneInfo? timeZone = null;
        ManifestRange? inline = null;
        try
        {
            await json.ReadRootAsync(cancellationToken).ConfigureAwait(false);
            if (json.BeginObject("a schedule must be a JSON object ({ \"cron\": \"0 2 * * *\", \"timeZone\": \"UTC\", \"manifest\": { ... } })") is { } root)
            {
                while (await json.NextFieldAsync(root, Fields, cancellationToken).ConfigureAwait(false) is { } field)
                {
                    switch (field)
                    {
                        case "cron":
                            if (json.TryGetString(out var text)) (cron, expression) = (text, ParseCron(text, json));
                            break;
                        case "timeZone":
                            if (json.TryGetString(out var zone)) (timeZoneId, timeZone) = (zone, FindTimeZone(zone, json));
                            break;
                        case "manifestBlob":
                            if (json.TryGetString(out var blob))
                            {
                                if (ManifestRules.CheckRelativePath(blob) is { } problem)
                                    json.Report($"{StrictJsonReader.Quote(blob)} {problem}; give a blob name in the 'manifests' container, like 'templates/nightly.json'");
                                else manifestBlob = blob;
                            }
                            break;
                        case "manifest":
                            if (json.BeginObject("must be the manifest itself, a JSON object ({ \"schemaVersion\": 1, \"items\": [...] })") is null) break;
                            var start = tokens.TokenStart;
                            await json.SkipValueAsync(cancellationToken).ConfigureAwait(false);
                            inline = new ManifestRange(start, tokens.TokenEnd - start);
                            break;
                    }
                }
                if (!json.Had(root, "cron")) json.Report("missing required field 'cron' (like \"0 2 * * *\": 02:00 every day)");
                var hasManifest = json.Had(root, "manifest");
                var hasBlob = json.Had(root, "manifestBlob");
                if (hasManifest && hasBlob) json.Report("has both 'manifest' and 'manifestBlob'; give exactly one of them");
                if (!hasManifest && !hasBlob)
                    json.Report("missing the manifest: give 'manifest' (the manifest itself) or 'manifestBlob' (a blob in the 'manifests' container)");
            }
            await json.ReadToEndAsync(cancellationToken).ConfigureAwait(false);
        }
        catch (JsonFormatException e)
        {
            problems.Report(e.Path, e.Message);
        }

        timeZoneId ??= "UTC";
        timeZone ??= timeZoneId == "UTC" ? TimeZoneInfo.Utc : null;
        var valid = problems.Total == 0 && expression is not null && timeZone is not null;
        return new ScheduleParseResult
        {
            Name = name,
            ReportName = ManifestIds.IsValid(name) ? name : ManifestIds.Sanitize(name) is { Length: > 0 } safe ? safe : "unnamed",
            Source = blobName,
            Problems = problems.Problems.ToArray(),
            TotalProblems = problems.Total,
            Schedule = valid
                ? new ScheduleDefinition
                {
                    Name = name, Cron = cron!, Expression = expression!, TimeZone = timeZone!,
                    ManifestBlob = manifestBlob, InlineManifest = inline,
                }
                : null,
        };
    }

    /// <summary>A stream over <paramref name="range"/> of a schedule file (the inline manifest), for validation and expansion.</summary>
    public static Stream OpenRange(Stream schedule, ManifestRange range)
    {
        if (!schedule.CanSeek) throw new ArgumentException("the schedule stream must be seekable; for a blob, open it at range.Offset", nameof(schedule));
        schedule.Position = range.Offset;
        return new StreamSlice(schedule, range.Length);
    }

    private static void CheckName(string blobName, string name, ProblemCollector problems)
    {
        if (!blobName.EndsWith(".json", StringComparison.Ordinal))
            problems.Report("$", $"the schedule file {StrictJsonReader.Quote(blobName)} must be named {{name}}.json");
        if (ManifestIds.Explain(name) is { } why)
            problems.Report("$", $"the schedule name {StrictJsonReader.Quote(name)} (from its file name) is not valid: it {why}");
        else if (name.Length > MaxNameLength)
            problems.Report("$", $"the schedule name is {name.Length} characters long; at most {MaxNameLength}, so that '{{name}}-yyyyMMddTHHmmZ' is a valid job id");
    }

    private static CronExpression? ParseCron(string text, StrictJsonReader json)
    {
        const string form = "give 5 fields (minute hour day-of-month month day-of-week, like \"0 2 * * *\"), 6 with seconds first (\"0 0 2 * * *\"), or a macro like \"@daily\"";
        var fields = text.Split((char[]?)null, StringSplitOptions.RemoveEmptyEntries);
        if (text.StartsWith('@'))
        {
            if (text.Trim() == "@every_second")
            {
                json.Report($"\"@every_second\" fires more than once a minute, but a job is named by its minute; {form}");
                return null;
            }
        }
        else if (fields.Length == 6)
        {
            // Job ids have minute resolution, so a schedule must not fire twice in one minute.
            if (!int.TryParse(fields[0], NumberStyles.None, CultureInfo.InvariantCulture, out var second) || second > 59)
            {
                json.Report($"{StrictJsonReader.Quote(text)}: the seconds field must be one number from 0 to 59 (a job is named by its minute, so a schedule fires at most once a minute)");
                return null;
            }
        }
        else if (fields.Length != 5)
        {
            json.Report($"{StrictJsonReader.Quote(text)} has {fields.Length} fields; {form}");
            return null;
        }
        try
        {
            return CronExpression.Parse(text.Trim(), fields.Length == 6 ? CronFormat.IncludeSeconds : CronFormat.Standard);
        }
        catch (CronFormatException e)
        {
            json.Report($"{StrictJsonReader.Quote(text)} is not a valid cron expression ({e.Message.TrimEnd('.')}); {form}");
            return null;
        }
    }

    private static TimeZoneInfo? FindTimeZone(string id, StrictJsonReader json)
    {
        try
        {
            if (id.Length > 0) return TimeZoneInfo.FindSystemTimeZoneById(id);
        }
        catch (Exception e) when (e is TimeZoneNotFoundException or InvalidTimeZoneException)
        {
        }
        json.Report($"{StrictJsonReader.Quote(id)} is not a known time zone; use an IANA id like \"Europe/Paris\" or a Windows id like \"Romance Standard Time\"");
        return null;
    }
}

/// <summary>A read-only window of <c>length</c> bytes over a stream, from its current position.</summary>
internal sealed class StreamSlice(Stream inner, long length) : Stream
{
    private readonly long _length = length;
    private long _left = length;

    public override int Read(byte[] buffer, int offset, int count) => Read(buffer.AsSpan(offset, count));

    public override int Read(Span<byte> buffer)
    {
        if (_left <= 0) return 0;
        var n = inner.Read(buffer[..(int)Math.Min(buffer.Length, _left)]);
        _left -= n;
        return n;
    }

    public override async ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default)
    {
        if (_left <= 0) return 0;
        var n = await inner.ReadAsync(buffer[..(int)Math.Min(buffer.Length, _left)], cancellationToken).ConfigureAwait(false);
        _left -= n;
        return n;
    }

    public override Task<int> ReadAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) =>
        ReadAsync(buffer.AsMemory(offset, count), cancellationToken).AsTask();

    public override bool CanRead => true;
    public override bool CanSeek => false;
    public override bool CanWrite => false;
    public override long Length => _length;
    public override long Position { get => _length - _left; set => throw new NotSupportedException(); }
    public override void Flush() { }
    public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
    public override void SetLength(long value) => throw new NotSupportedException();
    public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();
}
