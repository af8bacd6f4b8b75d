using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using TorchSharp;
using static TorchSharp.torch;

namespace BatchRender.Model.Loading;

/// <summary>A state-dict mismatch: every missing, unexpected, wrong-shaped or unreadable tensor, reported together.</summary>
public sealed class WeightLoadException(string componentDirectory, IReadOnlyList<string> problems)
    : Exception($"{componentDirectory}: {problems.Count} weight problem(s):{Environment.NewLine}  "
                           + string.Join(Environment.NewLine + "  ", problems))
{
    public string ComponentDirectory { get; } = componentDirectory;
    public IReadOnlyList<string> Problems { get; } = problems;
}

/// <summary>Relaxations of the strict load, for components whose files legitimately differ from the module.</summary>
public sealed record StateDictLoadOptions
{
    /// <summary>File keys the module does not have but that may be skipped (e.g. an unused pooler).</summary>
    public Func<string, bool>? IgnoreUnexpected { get; init; }
    /// <summary>Module keys the file may lack (e.g. a tied embedding filled by the caller).</summary>
    public Func<string, bool>? AllowMissing { get; init; }
    /// <summary>Maps a file key to the module key (identity when null); return null to drop the key.</summary>
    public Func<string, string?>? MapFileKey { get; init; }

    public static StateDictLoadOptions Strict { get; } = new();
}

/// <summary>
/// A component folder in diffusers layout (transformer/, vae/, text_encoder/ ...): config.json plus
/// <c>diffusion_pytorch_model.safetensors</c> or <c>model.safetensors</c>, or shards listed by a <c>*.safetensors.index.json</c>.
/// Loads weights strictly into a TorchSharp module whose parameter names are the file's keys, and saves the same layout.
/// </summary>
public static class DiffusersComponent
{
    public const string ConfigFileName = "config.json";
    public static readonly string[] WeightFileNames = ["diffusion_pytorch_model.safetensors", "model.safetensors"];

    /// <summary>The weight files of a component, in a stable order (index order for shards). Throws when none is found.</summary>
    public static IReadOnlyList<string> FindWeightFiles(string componentDirectory)
    {
        if (!Directory.Exists(componentDirectory))
            throw new DirectoryNotFoundException($"model component directory not found: {componentDirectory}");
        foreach (var name in WeightFileNames)
        {
            var index = Path.Combine(componentDirectory, name + ".index.json");
            if (File.Exists(index)) return ReadIndex(index);
            var single = Path.Combine(componentDirectory, name);
            if (File.Exists(single)) return [single];
        }
        var indexes = Directory.GetFiles(componentDirectory, "*.safetensors.index.json");
        if (indexes.Length == 1) return ReadIndex(indexes[0]);
        throw new FileNotFoundException(
            $"{componentDirectory}: no weights found (expected {string.Join(" or ", WeightFileNames)}, or a *.safetensors.index.json)");
    }

    private static IReadOnlyList<string> ReadIndex(string indexPath)
    {
        JsonObject weightMap;
        try
        {
            weightMap = JsonNode.Parse(File.ReadAllText(indexPath))?["weight_map"]?.AsObject()
                        ?? throw new InvalidDataException("no \"weight_map\" object");
        }
        catch (Exception e) when (e is JsonException or InvalidOperationException or InvalidDataException)
        {
            throw new InvalidDataException($"{indexPath}: invalid shard index: {e.Message}", e);
        }
        var directory = Path.GetDirectoryName(indexPath)!;
        var files = weightMap.Select(kv => kv.Value?.GetValue<string>()
                                           ?? throw new InvalidDataException($"{indexPath}: weight_map['{kv.Key}'] is not a file name"))
                             .Distinct().Order(StringComparer.Ordinal)
                             .Select(f => Path.Combine(directory, f)).ToList();
        foreach (var f in files.Where(f => !File.Exists(f)))
            throw new FileNotFoundException($"{indexPath}: shard '{Path.GetFileName(f)}' listed in the index is missing", f);
        return files;
    }

    /// <summary>
    /// Compares the component's safetensors headers with the module's tensors (names and shapes only, no data read, so
    /// the module may live on the meta device) and returns every problem; empty when a strict load would succeed.
    /// </summary>
    public static IReadOnlyList<string> CheckStateDict(nn.Module module, string componentDirectory, StateDictLoadOptions? options = null)
        => Plan(module, FindWeightFiles(componentDirectory).Select(SafetensorsFile.ReadHeader).ToList(), options ?? StateDictLoadOptions.Strict).Problems;

    /// <summary>
    /// Loads a component's weights into <paramref name="module"/> strictly: every module tensor (parameters and persistent
    /// buffers) must be in the files with the same shape and every file tensor must belong to the module, else a
    /// <see cref="WeightLoadException"/> lists all problems (checked from the headers before any data is read).
    /// The module is first moved to <paramref name="device"/> / <paramref name="dtype"/> when given (floating tensors only);
    /// stored fp32/fp16/bf16 data is converted to each module tensor's dtype while copying.
    /// </summary>
    public static void LoadStateDict(nn.Module module, string componentDirectory, ScalarType? dtype = null, Device? device = null,
                                     StateDictLoadOptions? options = null)
    {
        var files = FindWeightFiles(componentDirectory).Select(SafetensorsFile.ReadHeader).ToList();
        var (problems, plan) = Plan(module, files, options ?? StateDictLoadOptions.Strict);
        if (problems.Count > 0) throw new WeightLoadException(componentDirectory, problems);

        if (device is not null || dtype is not null) MoveTo(module, dtype, device);
        var targets = module.state_dict();
        if (targets.Values.Any(t => t.device_type == DeviceType.META))
            throw new InvalidOperationException("cannot load weights into a module on the meta device; construct it on a real device");

        using var noGrad = torch.no_grad();
        foreach (var (file, items) in plan)
        {
            var byName = items.ToDictionary(i => i.Entry.Name, i => i.Key);
            file.ReadTensors(items.Select(i => i.Entry), (entry, data) => targets[byName[entry.Name]].copy_(data));
        }
    }

    private static (List<string> Problems, List<(SafetensorsFile File, List<(SafetensorsEntry Entry, string Key)> Items)> Plan)
        Plan(nn.Module module, IReadOnlyList<SafetensorsFile> files, StateDictLoadOptions options)
    {
        var targets = module.state_dict().ToDictionary(kv => kv.Key, kv => kv.Value.shape);
        var problems = new List<string>();
        var plan = new List<(SafetensorsFile, List<(SafetensorsEntry, string)>)>();
        var seen = new Dictionary<string, string>();
        foreach (var file in files)
        {
            var items = new List<(SafetensorsEntry, string)>();
            foreach (var entry in file.Entries)
            {
                string? key = options.MapFileKey is null ? entry.Name : options.MapFileKey(entry.Name);
                if (key is null) continue;
                if (seen.TryGetValue(key, out var other))
                {
                    problems.Add($"duplicate tensor '{key}' in {Path.GetFileName(other)} and {Path.GetFileName(file.Path)}");
                    continue;
                }
                seen[key] = file.Path;
                if (!targets.TryGetValue(key, out var shape))
                {
                    if (options.IgnoreUnexpected?.Invoke(key) != true)
                        problems.Add($"unexpected tensor '{key}' {entry.ShapeText} in {Path.GetFileName(file.Path)} (the model has no such tensor)");
                    continue;
                }
                if (!entry.Shape.SequenceEqual(shape))
                {
                    problems.Add($"shape mismatch for '{key}': file {entry.ShapeText}, model {SafetensorsFile.FormatShape(shape)}");
                    continue;
                }
                try { SafetensorsFile.ToScalarType(entry.DType); }
                catch (InvalidDataException e) { problems.Add($"'{key}': {e.Message}"); continue; }
                items.Add((entry, key));
            }
            plan.Add((file, items));
        }
        foreach (var (key, shape) in targets.Where(kv => !seen.ContainsKey(kv.Key)).OrderBy(kv => kv.Key, StringComparer.Ordinal))
        {
            if (options.AllowMissing?.Invoke(key) != true)
                problems.Add($"missing tensor '{key}' {SafetensorsFile.FormatShape(shape)} (not in the weight files)");
        }
        return (problems, plan);
    }

    private static void MoveTo(nn.Module module, ScalarType? dtype, Device? device)
    {
        if (device is not null) module.to(device);
        if (dtype is { } type)
        {
            if (!torch.is_floating_point(torch.empty(0, type)))
                throw new ArgumentException($"weights can only be loaded as a floating-point dtype, not {type}", nameof(dtype));
            module.to(type);
        }
    }

    /// <summary>Reads config.json of a component as a JSON object.</summary>
    public static JsonObject ReadConfigJson(string componentDirectory)
    {
        var path = Path.Combine(componentDirectory, ConfigFileName);
        if (!File.Exists(path)) throw new FileNotFoundException($"{path}: config.json not found", path);
        try
        {
            return JsonNode.Parse(File.ReadAllText(path), documentOptions: new JsonDocumentOptions { CommentHandling = JsonCommentHandling.Skip })
                       ?.AsObject() ?? throw new InvalidDataException("not a JSON object");
        }
        catch (Exception e) when (e is JsonException or InvalidOperationException or InvalidDataException)
        {
            throw new InvalidDataException($"{path}: invalid config: {e.Message}", e);
        }
    }

    /// <summary>
    /// Writes a component folder: config.json and the module's state dict (sorted keys), optionally cast to
    /// <paramref name="dtype"/>, as one safetensors file named <paramref name="weightsFileName"/>, or, when it would exceed
    /// <paramref name="maxShardBytes"/>, as shards <c>stem-0000i-of-0000n.safetensors</c> plus <c>weightsFileName.index.json</c>
    /// (the transformers/diffusers layout). Every file goes through a temporary and is renamed into place; the other layout's
    /// files of the same name are removed so the folder never holds both.
    /// </summary>
    public static void Save(nn.Module module, string componentDirectory, JsonObject config,
                            string weightsFileName = "diffusion_pytorch_model.safetensors", ScalarType? dtype = null,
                            long? maxShardBytes = null)
    {
        Directory.CreateDirectory(componentDirectory);
        var metadata = new Dictionary<string, string> { ["format"] = "pt" };
        var indexPath = Path.Combine(componentDirectory, weightsFileName + ".index.json");
        var singlePath = Path.Combine(componentDirectory, weightsFileName);
        using (var scope = torch.NewDisposeScope())
        {
            var tensors = module.state_dict().OrderBy(kv => kv.Key, StringComparer.Ordinal)
                .Select(kv => KeyValuePair.Create(kv.Key, dtype is { } t && kv.Value.is_floating_point() ? kv.Value.to(t) : kv.Value))
                .ToList();
            static long Bytes(Tensor t) => t.NumberOfElements * t.ElementSize;
            long total = tensors.Sum(kv => Bytes(kv.Value));
            if (maxShardBytes is not { } max || total <= max)
            {
                SafetensorsFile.Write(singlePath, tensors, metadata);
                if (File.Exists(indexPath)) File.Delete(indexPath);
            }
            else
            {
                var shards = new List<List<KeyValuePair<string, Tensor>>> { new() };
                long current = 0;
                foreach (var kv in tensors)
                {
                    if (current > 0 && current + Bytes(kv.Value) > max) { shards.Add([]); current = 0; }
                    shards[^1].Add(kv);
                    current += Bytes(kv.Value);
                }
                string stem = weightsFileName.EndsWith(".safetensors") ? weightsFileName[..^".safetensors".Length] : weightsFileName;
                var weightMap = new JsonObject();
                for (int i = 0; i < shards.Count; i++)
                {
                    string name = $"{stem}-{i + 1:D5}-of-{shards.Count:D5}.safetensors";
                    SafetensorsFile.Write(Path.Combine(componentDirectory, name), shards[i], metadata);
                    foreach (var kv in shards[i]) weightMap[kv.Key] = name;
                }
                var index = new JsonObject { ["metadata"] = new JsonObject { ["total_size"] = total }, ["weight_map"] = weightMap };
                WriteTextAtomically(indexPath, index.ToJsonString(new JsonSerializerOptions { WriteIndented = true }) + "\n");
                if (File.Exists(singlePath)) File.Delete(singlePath);
            }
        }
        WriteTextAtomically(Path.Combine(componentDirectory, ConfigFileName),
                            config.ToJsonString(new JsonSerializerOptions { WriteIndented = true }) + "\n");
    }

    private static void WriteTextAtomically(string path, string text)
    {
        var temp = path + ".tmp";
        File.WriteAllText(temp, text);
        File.Move(temp, path, overwrite: true);
    }

    /// <summary>
    /// SHA-256 (lower-case hex) over every component's weight files of a whole diffusers model directory: for each component
    /// folder with weights (ordinal order) and each of its weight files (<see cref="FindWeightFiles"/> order), the relative
    /// path "component/file" and a NUL byte, then the file's bytes. Stable across machines and copies; configs, tokenizers
    /// and timestamps do not enter it.
    /// </summary>
    public static string ComputePipelineHash(string modelDirectory)
    {
        if (!Directory.Exists(modelDirectory)) throw new DirectoryNotFoundException($"model directory not found: {modelDirectory}");
        using var hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        var buffer = new byte[1 << 20];
        int components = 0;
        foreach (var component in Directory.GetDirectories(modelDirectory).Order(StringComparer.Ordinal))
        {
            if (!WeightFileNames.Any(n => File.Exists(Path.Combine(component, n)) || File.Exists(Path.Combine(component, n + ".index.json")))
                && Directory.GetFiles(component, "*.safetensors.index.json").Length != 1) continue;
            components++;
            foreach (var file in FindWeightFiles(component))
            {
                hash.AppendData(Encoding.UTF8.GetBytes($"{Path.GetFileName(component)}/{Path.GetFileName(file)}\0"));
                AppendFile(hash, file, buffer);
            }
        }
        if (components == 0) throw new FileNotFoundException($"{modelDirectory}: no component folder with safetensors weights");
        return Convert.ToHexStringLower(hash.GetHashAndReset());
    }

    private static void AppendFile(IncrementalHash hash, string file, byte[] buffer)
    {
        using var stream = new FileStream(file, FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 20);
        int read;
        while ((read = stream.Read(buffer)) > 0) hash.AppendData(buffer, 0, read);
    }

    /// <summary>
    /// SHA-256 (lower-case hex) over the component's weight files, concatenated in <see cref="FindWeightFiles"/> order.
    /// For a single-file component it equals <c>sha256sum</c> of that file; it does not depend on paths or timestamps.
    /// </summary>
    public static string ComputeModelHash(string componentDirectory)
    {
        using var hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        var buffer = new byte[1 << 20];
        foreach (var file in FindWeightFiles(componentDirectory)) AppendFile(hash, file, buffer);
        return Convert.ToHexStringLower(hash.GetHashAndReset());
    }
}
