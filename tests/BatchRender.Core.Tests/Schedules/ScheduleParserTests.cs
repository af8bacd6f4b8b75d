using System.Text;
using System.Text.Json;
using BatchRender.Core.Manifests;
using BatchRender.Core.Schedules;
using BatchRender.Core.Tests.Manifests;

namespace BatchRender.Core.Tests.Schedules;

public sealed class ScheduleParserTests : IDisposable
{
    private readonly ManifestTestKit _kit = new();
    private ScheduleParser Parser => new(_kit.Rules);

    private Task<ScheduleParseResult> ParseAsync(string json, string blobName = "nightly.json") =>
        Parser.ParseAsync(new MemoryStream(Encoding.UTF8.GetBytes(json)), blobName);

    private static DateTimeOffset Utc(string iso) => DateTimeOffset.Parse(iso, null, System.Globalization.DateTimeStyles.AssumeUniversal);

    [Fact]
    public async Task A_schedule_with_an_inline_manifest_locates_it_and_the_manifest_validates_as_the_occurrences_job()
    {
        var bytes = File.ReadAllBytes(ManifestTestKit.TestData("Schedules", "nightly.json"));
        var result = await Parser.ParseAsync(new MemoryStream(bytes), "nightly.json");

        Assert.True(result.IsValid, string.Join("\n", result.Problems));
        var schedule = result.Schedule!;
        Assert.Equal(("nightly", "0 0 2 * * *", "Europe/Paris", null), (schedule.Name, schedule.Cron, schedule.TimeZone.Id, schedule.ManifestBlob));
        var range = schedule.InlineManifest!;
        var inline = Encoding.UTF8.GetString(bytes, (int)range.Offset, (int)range.Length);
        Assert.StartsWith("{\n    \"schemaVersion\": 1", inline);
        Assert.EndsWith("]\n  }", inline);

        // Each occurrence validates the inline manifest as its own job: the schedule names it, the manifest's jobId is ignored.
        var occurrence = schedule.DueBetween(Utc("2026-11-24T12:00:00Z"), Utc("2026-11-25T12:00:00Z")).Occurrences.Single();
        var jobId = schedule.JobIdFor(occurrence);
        Assert.Equal("nightly-20261125T0100Z", jobId); // 02:00 in Paris (UTC+1 in November)
        await using var manifest = ScheduleParser.OpenRange(new MemoryStream(bytes), range);
        var validated = await _kit.Validator.ValidateAsync(manifest, new ManifestSource("nightly.json#manifest", _kit.Inputs) { AssignedJobId = jobId });
        Assert.Equal(jobId, validated.JobId);
        Assert.Contains("is ignored: this job was started by a schedule", Assert.Single(validated.Warnings).Message);
        var problem = Assert.Single(validated.Problems).Under("manifest");
        Assert.Equal("manifest.items[1].width", problem.Path);
    }

    [Fact]
    public async Task The_inline_manifest_range_counts_a_byte_order_mark_and_long_whitespace()
    {
        var body = Encoding.UTF8.GetBytes("{ \"cron\": \"0 2 * * *\"," + new string(' ', 200_000) + "\"manifest\":   {\"schemaVersion\":1,\"items\":[{\"id\":\"a\",\"prompt\":\"p\"}]}  }");
        byte[] bytes = [0xEF, 0xBB, 0xBF, .. body];
        var result = await Parser.ParseAsync(new MemoryStream(bytes), "bom.json");

        Assert.True(result.IsValid, string.Join("\n", result.Problems));
        var range = result.Schedule!.InlineManifest!;
        Assert.Equal("{\"schemaVersion\":1,\"items\":[{\"id\":\"a\",\"prompt\":\"p\"}]}", Encoding.UTF8.GetString(bytes, (int)range.Offset, (int)range.Length));
    }

    [Fact]
    public async Task A_schedule_naming_a_manifest_blob_with_a_Windows_time_zone_id()
    {
        var result = await ParseAsync("""{ "cron": "30 6 * * 1-5", "timeZone": "W. Europe Standard Time", "manifestBlob": "templates/weekday.json" }""", "weekday-morning.json");

        Assert.True(result.IsValid, string.Join("\n", result.Problems));
        Assert.Equal("templates/weekday.json", result.Schedule!.ManifestBlob);
        Assert.Null(result.Schedule.InlineManifest);
        // Monday 2026-11-23 and Tuesday 06:30 in Berlin/Paris time = 05:30 UTC.
        var due = result.Schedule.DueBetween(Utc("2026-11-22T00:00:00Z"), Utc("2026-11-24T23:00:00Z"));
        Assert.Equal(["weekday-morning-20261123T0530Z", "weekday-morning-20261124T0530Z"], due.Occurrences.Select(result.Schedule.JobIdFor));
    }

    [Fact]
    public async Task Consecutive_timer_windows_start_each_occurrence_once()
    {
        var schedule = (await ParseAsync("""{ "cron": "0 2 * * *", "manifestBlob": "t.json" }""")).Schedule!;
        Assert.Equal(TimeZoneInfo.Utc, schedule.TimeZone);

        var first = schedule.DueBetween(Utc("2026-11-24T01:00:00Z"), Utc("2026-11-25T02:00:00Z"));
        var second = schedule.DueBetween(first.CheckedUntil, Utc("2026-11-26T03:00:00Z"));
        var again = schedule.DueBetween(Utc("2026-11-24T01:00:00Z"), Utc("2026-11-25T02:00:00Z")); // a second instance, same window

        Assert.Equal(["nightly-20261124T0200Z", "nightly-20261125T0200Z"], first.Occurrences.Select(schedule.JobIdFor));
        Assert.Equal(["nightly-20261126T0200Z"], second.Occurrences.Select(schedule.JobIdFor));
        Assert.Equal(first.Occurrences, again.Occurrences);
        Assert.Empty(schedule.DueBetween(Utc("2026-11-26T03:00:00Z"), Utc("2026-11-26T03:00:00Z")).Occurrences);
    }

    [Fact]
    public async Task Catching_up_after_an_outage_is_bounded_and_loses_nothing()
    {
        var schedule = (await ParseAsync("""{ "cron": "* * * * *", "manifestBlob": "t.json" }""")).Schedule!;
        var from = Utc("2026-11-25T00:00:00Z");
        var now = from.AddHours(5);

        var seen = new List<DateTimeOffset>();
        var checkedUntil = from;
        DueOccurrences due;
        do
        {
            due = schedule.DueBetween(checkedUntil, now, max: 100);
            seen.AddRange(due.Occurrences);
            checkedUntil = due.CheckedUntil;
        } while (due.More);

        Assert.Equal(300, seen.Count);
        Assert.Equal(300, seen.Distinct().Count());
        Assert.Equal(now, checkedUntil);
    }

    [Fact]
    public async Task Daylight_saving_gaps_and_overlaps_fire_once()
    {
        var schedule = (await ParseAsync("""{ "cron": "30 2 * * *", "timeZone": "Europe/Paris", "manifestBlob": "t.json" }""")).Schedule!;
        // 2026-03-29: 02:00 -> 03:00 in Paris (02:30 does not exist); 2026-10-25: 03:00 -> 02:00 (02:30 happens twice).
        var spring = schedule.DueBetween(Utc("2026-03-28T12:00:00Z"), Utc("2026-03-29T12:00:00Z")).Occurrences;
        var autumn = schedule.DueBetween(Utc("2026-10-24T12:00:00Z"), Utc("2026-10-25T12:00:00Z")).Occurrences;
        Assert.Single(spring);
        Assert.Single(autumn);
    }

    public static TheoryData<string, string, string, string> Invalid() => new()
    {
        { "unknown field", """{ "crn": "0 2 * * *", "manifestBlob": "t.json" }""", "crn", "unknown field 'crn' in a schedule (did you mean 'cron'?)" },
        { "null", """{ "cron": "0 2 * * *", "timeZone": null, "manifestBlob": "t.json" }""", "timeZone", "must not be null" },
        { "duplicate key", """{ "cron": "0 2 * * *", "cron": "0 3 * * *", "manifestBlob": "t.json" }""", "cron", "duplicate key 'cron'" },
        { "cron missing", """{ "manifestBlob": "t.json" }""", "$", "missing required field 'cron'" },
        { "both manifests", """{ "cron": "0 2 * * *", "manifest": { }, "manifestBlob": "t.json" }""", "$", "has both 'manifest' and 'manifestBlob'" },
        { "no manifest", """{ "cron": "0 2 * * *" }""", "$", "missing the manifest: give 'manifest'" },
        { "four fields", """{ "cron": "0 2 * *", "manifestBlob": "t.json" }""", "cron", "\"0 2 * *\" has 4 fields; give 5 fields" },
        { "minute 61", """{ "cron": "61 2 * * *", "manifestBlob": "t.json" }""", "cron", "\"61 2 * * *\" is not a valid cron expression" },
        { "twice a minute", """{ "cron": "*/30 * * * * *", "manifestBlob": "t.json" }""", "cron", "the seconds field must be one number from 0 to 59" },
        { "every second", """{ "cron": "@every_second", "manifestBlob": "t.json" }""", "cron", "fires more than once a minute" },
        { "cron as a number", """{ "cron": 5, "manifestBlob": "t.json" }""", "cron", "must be a string, got 5" },
        { "unknown time zone", """{ "cron": "0 2 * * *", "timeZone": "Mars/Olympus", "manifestBlob": "t.json" }""", "timeZone", "\"Mars/Olympus\" is not a known time zone" },
        { "blob outside", """{ "cron": "0 2 * * *", "manifestBlob": "../other/t.json" }""", "manifestBlob", "contains '..'" },
        { "blob URL", """{ "cron": "0 2 * * *", "manifestBlob": "https://x.example/t.json" }""", "manifestBlob", "is a URL; give a blob name in the 'manifests' container" },
        { "manifest not an object", """{ "cron": "0 2 * * *", "manifest": [ ] }""", "manifest", "must be the manifest itself, a JSON object" },
        { "items at the top", """{ "cron": "0 2 * * *", "items": [ ] }""", "items", "a schedule holds its manifest in 'manifest'" },
        { "invalid JSON", """{ "cron": "0 2 * * *", }""", "cron", "a trailing comma before '}' or ']' is not allowed" },
    };

    [Theory]
    [MemberData(nameof(Invalid))]
    public async Task An_invalid_schedule_reports_each_problem_with_its_path(string name, string json, string path, string message)
    {
        var result = await ParseAsync(json);

        Assert.False(result.IsValid, name);
        Assert.Null(result.Schedule);
        Assert.True(result.Problems.Any(p => p.Path == path && p.Message.Contains(message, StringComparison.Ordinal)),
            $"expected '{path}: …{message}…' among:\n{string.Join("\n", result.Problems)}");
    }

    [Theory]
    [InlineData("my schedule.json", "my-schedule", "contains U+0020 at position 3")]
    [InlineData("_job.json", "job", "starts with '_'")]
    [InlineData("nightly.yaml", "nightly.yaml", "must be named {name}.json")]
    public async Task The_file_name_must_give_a_valid_schedule_name(string blobName, string reportName, string message)
    {
        var result = await ParseAsync("""{ "cron": "0 2 * * *", "manifestBlob": "t.json" }""", blobName);

        Assert.False(result.IsValid);
        Assert.Contains(result.Problems, p => p.Path == "$" && p.Message.Contains(message, StringComparison.Ordinal));
        Assert.Equal($"_schedules/{reportName}/errors.json", result.ErrorsBlobName);
    }

    [Fact]
    public async Task A_name_too_long_for_its_job_ids_is_refused()
    {
        var result = await ParseAsync("""{ "cron": "0 2 * * *", "manifestBlob": "t.json" }""", new string('n', 114) + ".json");
        Assert.Contains("at most 113", Assert.Single(result.Problems).Message);
        var ok = await ParseAsync("""{ "cron": "0 2 * * *", "manifestBlob": "t.json" }""", new string('n', 113) + ".json");
        Assert.True(ManifestIds.IsValid(ok.Schedule!.JobIdFor(DateTimeOffset.UtcNow)));
    }

    [Fact]
    public async Task The_errors_document_has_the_agreed_shape()
    {
        var result = await ParseAsync("""{ "cron": "0 2 * *", "manifestBlob": "t.json" }""", "schedules-x/nightly.json");
        using var doc = JsonDocument.Parse(JsonSerializer.Serialize(ScheduleErrorsDocument.From(result)));
        var root = doc.RootElement;
        Assert.Equal("nightly", root.GetProperty("schedule").GetString());
        Assert.Equal("schedules-x/nightly.json", root.GetProperty("source").GetString());
        Assert.Equal(1, root.GetProperty("totalProblems").GetInt32());
        Assert.False(root.GetProperty("truncated").GetBoolean());
        Assert.Equal("cron", root.GetProperty("problems")[0].GetProperty("path").GetString());
    }

    public void Dispose() => _kit.Dispose();
}

public sealed class LocalScheduleCheckTests : IDisposable
{
    private readonly ManifestTestKit _kit = new();

    [Fact]
    public async Task Validate_schedule_reports_the_inline_manifests_problems_under_manifest()
    {
        var path = Path.Combine(_kit.Folder, "nightly.json");
        File.Copy(ManifestTestKit.TestData("Schedules", "nightly.json"), path);

        var result = await LocalScheduleCheck.CheckFileAsync(path, new ScheduleParser(_kit.Rules), _kit.Validator,
            new DateTimeOffset(2026, 11, 25, 12, 0, 0, TimeSpan.Zero));

        Assert.True(result.Schedule.IsValid);
        Assert.False(result.IsValid);
        Assert.Equal("nightly-20261126T0100Z", result.Manifest!.JobId);
        var problem = Assert.Single(result.Problems);
        Assert.Equal("manifest.items[1].width", problem.Path);
        Assert.Equal("manifest.jobId", Assert.Single(result.Warnings).Path);
    }

    public void Dispose() => _kit.Dispose();
}
