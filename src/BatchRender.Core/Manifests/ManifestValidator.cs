using System.IO.Hashing;
using System.Text;
using BatchRender.Core.Manifests.Json;

namespace BatchRender.Core.Manifests;

/// <summary>
/// Pass one over a manifest (DESIGN.md "Validation rules"): reads the stream once, token by token, and reports every
/// problem with its JSON path. Memory does not grow with prompts or the size of the file: beyond a buffer the size of
/// the largest token it keeps a 16-byte hash per item id, for the uniqueness check, and a few counters.
/// </summary>
public sealed class ManifestValidator(ManifestRules rules)
{
    /// <summary>Input checks (blob reads) in flight at once.</summary>
    private const int InputChecksInFlight = 16;
    private const int InputCacheEntries = 4096;

    public async Task<ManifestValidationResult> ValidateAsync(Stream manifest, ManifestSource source, CancellationToken cancellationToken = default)
    {
        var problems = new ProblemCollector();
        using var tokens = new JsonTokenStream(manifest, problems, rules.MaxTokenBytes, computeHash: true);
        var pass = new Pass(rules, source, new StrictJsonReader(tokens, problems), problems);
        try
        {
            await pass.ReadDocumentAsync(cancellationToken).ConfigureAwait(false);
        }
        catch (JsonFormatException e)
        {
            problems.Report(e.Path, e.Message);
            await tokens.DrainAsync(cancellationToken).ConfigureAwait(false);
        }
        await pass.FinishInputChecksAsync().ConfigureAwait(false);
        pass.FinishPixelChecks();

        var hash = Convert.ToHexStringLower(tokens.GetHashAndReset());
        var jobId = source.AssignedJobId ?? pass.OwnJobId ?? ManifestIds.Derive(source.Name, hash);
        return new ManifestValidationResult
        {
            Problems = problems.Problems.ToArray(),
            TotalProblems = problems.Total,
            Warnings = pass.Warnings,
            JobId = jobId,
            JobIdDerived = source.AssignedJobId is null && pass.OwnJobId is null,
            ItemCount = pass.ItemCount,
            Model = pass.Model ?? rules.Defaults.Model,
            Source = source.Name,
            ContentSha256 = hash,
            Length = tokens.BytesRead,
            Defaults = pass.Defaults ?? new RenderFields(),
        };
    }

    /// <summary>The state of one validation.</summary>
    private sealed class Pass(ManifestRules rules, ManifestSource source, StrictJsonReader json, ProblemCollector problems)
    {
        private readonly ManifestFieldReader _fields = new(json, rules);
        private readonly Dictionary<UInt128, int> _firstIndexOfId = [];
        private readonly Dictionary<(int? Width, int? Height), DeferredSizes> _deferredSizes = [];
        private readonly Queue<PendingInput> _pendingInputs = new();
        private readonly Dictionary<string, Task<InputCheck>> _inputCache = new(StringComparer.Ordinal);
        private bool _defaultsRead;

        public string? OwnJobId { get; private set; }
        public string? Model { get; private set; }
        public RenderFields? Defaults { get; private set; }
        public int ItemCount { get; private set; }
        public List<ManifestProblem> Warnings { get; } = [];

        public async Task ReadDocumentAsync(CancellationToken cancellationToken)
        {
            await json.ReadRootAsync(cancellationToken).ConfigureAwait(false);
            if (json.BeginObject("a manifest must be a JSON object ({ \"schemaVersion\": 1, \"items\": [...] })") is { } root)
            {
                while (await json.NextFieldAsync(root, ManifestFieldSets.Root, cancellationToken).ConfigureAwait(false) is { } name)
                {
                    switch (name)
                    {
                        case "schemaVersion":
                            json.TryGetInteger(ManifestRules.SchemaVersionRule, out _);
                            break;
                        case "jobId":
                            ReadJobId();
                            break;
                        case "model":
                            ReadModel();
                            break;
                        case "defaults":
                            Defaults = await _fields.ReadDefaultsAsync(cancellationToken).ConfigureAwait(false);
                            _defaultsRead = true;
                            CheckDefaultsPixels();
                            break;
                        case "items":
                            await ReadItemsAsync(cancellationToken).ConfigureAwait(false);
                            break;
                    }
                }
                if (!json.Had(root, "schemaVersion")) json.Report("missing required field 'schemaVersion' (it must be 1)");
                if (!json.Had(root, "items")) json.Report("missing required field 'items' (an array of items, each with an 'id' and a 'prompt')");
            }
            await json.ReadToEndAsync(cancellationToken).ConfigureAwait(false);
        }

        private void ReadJobId()
        {
            if (source.AssignedJobId is { } assigned)
            {
                var given = json.TokenType == System.Text.Json.JsonTokenType.String ? $"{StrictJsonReader.Quote(json.Tokens.String!)} " : "";
                Warnings.Add(new ManifestProblem(json.Path, $"jobId {given}is ignored: this job was started by a schedule and is named '{assigned}'"));
                return;
            }
            if (!json.TryGetString(out var jobId)) return;
            if (ManifestIds.Explain(jobId) is { } why) json.Report($"{StrictJsonReader.Quote(jobId)} is not a valid job id: it {why}");
            else OwnJobId = jobId;
        }

        private void ReadModel()
        {
            if (!json.TryGetString(out var model)) return;
            if (rules.Models.Contains(model))
            {
                Model = model;
                return;
            }
            var close = FieldSet.Closest(model, rules.Models);
            json.Report($"{StrictJsonReader.Quote(model)} is not a model the workers serve (served: {rules.ModelList})" +
                        (close is null ? "" : $"; did you mean '{close}'?"));
        }

        private async Task ReadItemsAsync(CancellationToken cancellationToken)
        {
            if (json.BeginArray("must be an array of items ([{ \"id\": \"star-001\", \"prompt\": \"...\" }, ...])") is not { } items) return;
            var count = 0;
            while (await json.NextElementAsync(items, cancellationToken).ConfigureAwait(false))
            {
                var index = count++;
                if (await _fields.ReadItemAsync(cancellationToken).ConfigureAwait(false) is not { } item) continue;
                CheckUniqueId(index, item);
                CheckPixels(index, item);
                await CheckInputsAsync(index, item, cancellationToken).ConfigureAwait(false);
            }
            // The reader is on the closing bracket: the path is "items".
            if (count == 0) json.Report("must contain at least one item");
            if (count > rules.Limits.MaxItems)
                json.Report($"has {count:N0} items; the limit is {rules.Limits.MaxItems:N0} per manifest (Limits:MaxItems), so split it into several manifests");
            ItemCount = count;
        }

        private void CheckUniqueId(int index, ItemFields item)
        {
            if (item.Id is not { } id || _firstIndexOfId.Count >= rules.Limits.MaxItems) return;
            // A 128-bit XXH3 hash stands for the id: 100k ids take ~3-6 MB instead of ~25 MB of strings. Equal ids always
            // collide, so no duplicate is missed; two different ids colliding is out of reach short of crafting them.
            Span<byte> utf8 = stackalloc byte[ManifestIds.MaxLength];
            var key = XxHash128.HashToUInt128(utf8[..Encoding.UTF8.GetBytes(id, utf8)]);
            if (_firstIndexOfId.TryAdd(key, index)) return;
            problems.Report($"items[{index}].id",
                $"duplicate id {StrictJsonReader.Quote(id)}: items[{_firstIndexOfId[key]}] has it already (ids are unique in a manifest, and case-sensitive)");
        }

        private void CheckPixels(int index, ItemFields item)
        {
            if (item.SizeInvalid || item is { Width: null, Height: null }) return; // nothing to check, or checked at 'defaults'
            if (item is { Width: { } w, Height: { } h } || _defaultsRead)
            {
                var (width, height) = Resolve(item.Width, item.Height);
                if (rules.PixelProblem(width, height) is { } problem) problems.Report($"items[{index}]", "width x height " + problem);
                return;
            }
            // 'defaults' may still come after 'items': check once the whole document is read.
            var key = (item.Width, item.Height);
            if (!_deferredSizes.TryGetValue(key, out var deferred)) _deferredSizes[key] = deferred = new DeferredSizes();
            deferred.Count++;
            if (deferred.Indices.Count < problems.Capacity) deferred.Indices.Add(index);
        }

        private void CheckDefaultsPixels()
        {
            if (Defaults is null || Defaults.SizeInvalid || Defaults is { Width: null, Height: null }) return;
            var (width, height) = Resolve(null, null);
            if (rules.PixelProblem(width, height) is { } problem) json.Report("width x height " + problem);
        }

        private (int Width, int Height) Resolve(int? width, int? height) =>
            (width ?? Defaults?.Width ?? rules.Defaults.Width, height ?? Defaults?.Height ?? rules.Defaults.Height);

        public void FinishPixelChecks()
        {
            foreach (var ((width, height), deferred) in _deferredSizes)
            {
                var (w, h) = Resolve(width, height);
                if (rules.PixelProblem(w, h) is not { } problem) continue;
                foreach (var index in deferred.Indices) problems.Report($"items[{index}]", "width x height " + problem);
                problems.CountUnlisted(deferred.Count - deferred.Indices.Count);
            }
        }

        private async Task CheckInputsAsync(int index, ItemFields item, CancellationToken cancellationToken)
        {
            if (item.Inpaint is not { } inpaint) return;
            if (inpaint.Image is { } image) StartInputCheck($"items[{index}].inpaint.image", image, cancellationToken);
            if (inpaint.Mask is { } mask) StartInputCheck($"items[{index}].inpaint.mask", mask, cancellationToken);
            while (_pendingInputs.Count > InputChecksInFlight) await CompleteOldestInputCheckAsync().ConfigureAwait(false);
        }

        private void StartInputCheck(string path, string relativePath, CancellationToken cancellationToken)
        {
            if (!_inputCache.TryGetValue(relativePath, out var check))
            {
                check = source.Inputs.CheckAsync(relativePath, cancellationToken);
                if (_inputCache.Count < InputCacheEntries) _inputCache[relativePath] = check;
            }
            _pendingInputs.Enqueue(new PendingInput(path, relativePath, check));
        }

        public async Task FinishInputChecksAsync()
        {
            while (_pendingInputs.Count > 0) await CompleteOldestInputCheckAsync().ConfigureAwait(false);
        }

        private async Task CompleteOldestInputCheckAsync()
        {
            var (path, relativePath, task) = _pendingInputs.Dequeue();
            var check = await task.ConfigureAwait(false);
            var name = StrictJsonReader.Quote(relativePath);
            if (check.Refusal is { } refusal) problems.Report(path, $"{name} {refusal}");
            else if (!check.Exists) problems.Report(path, $"{name} does not exist in the manifest's folder");
            else if (InputImageFormats.Problem(check.Header.Span) is { } format) problems.Report(path, $"{name} {format}");
        }

        private sealed class DeferredSizes
        {
            public int Count;
            public List<int> Indices { get; } = [];
        }

        private readonly record struct PendingInput(string Path, string RelativePath, Task<InputCheck> Check);
    }
}
