using System.Buffers.Binary;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using TorchSharp;
using static TorchSharp.torch;

[assembly: System.Runtime.CompilerServices.InternalsVisibleTo("BatchRender.Model.Tests")]

namespace BatchRender.Model.Loading;

/// <summary>One tensor's entry in a safetensors header: dtype name, shape and byte range inside the data section.</summary>
public sealed record SafetensorsEntry(string Name, string DType, long[] Shape, long Begin, long End)
{
    public long ByteLength => End - Begin;
    public long ElementCount => Shape.Aggregate(1L, (a, b) => a * b);
    public string ShapeText => SafetensorsFile.FormatShape(Shape);
}

/// <summary>
/// The safetensors format, read and written directly: an 8-byte little-endian header length, a JSON header
/// (name -> {dtype, shape, data_offsets}, plus an optional "__metadata__" string map), then the raw little-endian data.
/// Reading the header on its own lets a loader validate every name and shape before it allocates anything.
/// </summary>
public sealed class SafetensorsFile
{
    private const long MaxHeaderBytes = 100L * 1024 * 1024;
    private const int Alignment = 8;

    /// <summary>Bytes copied per read when filling a tensor; small in tests to exercise the chunked path.</summary>
    internal static long ReadChunkBytes { get; set; } = 64L * 1024 * 1024;

    public string Path { get; }
    public IReadOnlyList<SafetensorsEntry> Entries { get; }
    public IReadOnlyDictionary<string, string> Metadata { get; }
    /// <summary>File offset of the first data byte (8 + header length).</summary>
    public long DataStart { get; }

    private SafetensorsFile(string path, IReadOnlyList<SafetensorsEntry> entries, IReadOnlyDictionary<string, string> metadata, long dataStart)
        => (Path, Entries, Metadata, DataStart) = (path, entries, metadata, dataStart);

    /// <summary>Reads and validates the header only (no tensor data).</summary>
    public static SafetensorsFile ReadHeader(string path)
    {
        using var stream = File.OpenRead(path);
        Span<byte> lengthBytes = stackalloc byte[8];
        if (stream.Length < 8 || stream.ReadAtLeast(lengthBytes, 8, throwOnEndOfStream: false) < 8)
            throw new InvalidDataException($"{path}: not a safetensors file (shorter than its 8-byte header length)");
        long headerLength = BinaryPrimitives.ReadInt64LittleEndian(lengthBytes);
        if (headerLength <= 0 || headerLength > MaxHeaderBytes || 8 + headerLength > stream.Length)
            throw new InvalidDataException($"{path}: invalid safetensors header length {headerLength} (file is {stream.Length} bytes)");

        var headerBytes = new byte[headerLength];
        stream.ReadExactly(headerBytes);
        JsonObject header;
        try
        {
            header = JsonNode.Parse(headerBytes)?.AsObject() ?? throw new InvalidDataException("header is not a JSON object");
        }
        catch (JsonException e)
        {
            throw new InvalidDataException($"{path}: safetensors header is not valid JSON: {e.Message}", e);
        }

        long dataStart = 8 + headerLength;
        long dataLength = stream.Length - dataStart;
        var entries = new List<SafetensorsEntry>();
        var metadata = new Dictionary<string, string>();
        foreach (var (name, node) in header)
        {
            if (name == "__metadata__")
            {
                if (node is JsonObject meta)
                    foreach (var (k, v) in meta) metadata[k] = v?.GetValue<string>() ?? "";
                continue;
            }
            try
            {
                var obj = node!.AsObject();
                string dtype = obj["dtype"]!.GetValue<string>();
                long[] shape = obj["shape"]!.AsArray().Select(d => d!.GetValue<long>()).ToArray();
                var offsets = obj["data_offsets"]!.AsArray();
                long begin = offsets[0]!.GetValue<long>(), end = offsets[1]!.GetValue<long>();
                var entry = new SafetensorsEntry(name, dtype, shape, begin, end);
                if (begin < 0 || end < begin || end > dataLength)
                    throw new InvalidDataException($"data_offsets [{begin}, {end}] outside the {dataLength}-byte data section");
                if (shape.Any(d => d < 0))
                    throw new InvalidDataException($"negative dimension in shape {entry.ShapeText}");
                long expected = entry.ElementCount * ElementSize(dtype);
                if (expected != entry.ByteLength)
                    throw new InvalidDataException($"{dtype} {entry.ShapeText} needs {expected} bytes but data_offsets give {entry.ByteLength}");
                entries.Add(entry);
            }
            catch (Exception e) when (e is not InvalidDataException || !e.Message.StartsWith(path))
            {
                throw new InvalidDataException($"{path}: tensor '{name}': {e.Message}", e);
            }
        }
        return new SafetensorsFile(path, entries, metadata, dataStart);
    }

    /// <summary>
    /// Reads the named tensors in file order, each into a CPU tensor of its stored dtype, and hands it to <paramref name="consume"/>
    /// (which copies it where it belongs); the temporary is disposed afterwards, so peak extra memory is one tensor.
    /// </summary>
    public void ReadTensors(IEnumerable<SafetensorsEntry> entries, Action<SafetensorsEntry, Tensor> consume)
    {
        using var stream = new FileStream(Path, FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 20);
        foreach (var entry in entries.OrderBy(e => e.Begin))
        {
            using var scope = torch.NewDisposeScope();
            var tensor = torch.empty(entry.Shape, dtype: ToScalarType(entry.DType), device: CPU);
            stream.Position = DataStart + entry.Begin;
            FillFromStream(tensor, entry.ByteLength, stream);
            consume(entry, tensor);
        }
    }

    /// <summary>Reads every tensor of the file into CPU tensors of their stored dtype.</summary>
    public Dictionary<string, Tensor> ReadAll()
    {
        var result = new Dictionary<string, Tensor>();
        ReadTensors(Entries, (e, t) => result[e.Name] = t.clone().DetachFromDisposeScope());
        return result;
    }

    private static void FillFromStream(Tensor tensor, long byteLength, Stream stream)
    {
        if (byteLength == 0) return;
        long elementSize = tensor.ElementSize;
        var flat = tensor.view(-1);
        long elementsPerChunk = Math.Max(1, Math.Min(ReadChunkBytes, int.MaxValue) / elementSize);
        for (long start = 0; start < flat.shape[0]; start += elementsPerChunk)
        {
            long count = Math.Min(elementsPerChunk, flat.shape[0] - start);
            using var slice = flat.narrow(0, start, count);
            stream.ReadExactly(slice.bytes);
        }
        if (!BitConverter.IsLittleEndian) throw new PlatformNotSupportedException("safetensors data is little-endian");
    }

    /// <summary>
    /// Writes tensors (in the given order) as a safetensors file, through a temporary file renamed into place,
    /// so that a failure never leaves a half-written file under <paramref name="path"/>.
    /// </summary>
    public static void Write(string path, IEnumerable<KeyValuePair<string, Tensor>> tensors, IReadOnlyDictionary<string, string>? metadata = null)
    {
        var list = tensors.ToList();
        var header = new JsonObject();
        if (metadata is { Count: > 0 })
        {
            var meta = new JsonObject();
            foreach (var (k, v) in metadata) meta[k] = v;
            header["__metadata__"] = meta;
        }
        long offset = 0;
        foreach (var (name, tensor) in list)
        {
            long bytes = tensor.NumberOfElements * tensor.ElementSize;
            header[name] = new JsonObject
            {
                ["dtype"] = ToSafetensorsDType(tensor.dtype),
                ["shape"] = new JsonArray(tensor.shape.Select(d => (JsonNode)JsonValue.Create(d)!).ToArray()),
                ["data_offsets"] = new JsonArray(JsonValue.Create(offset), JsonValue.Create(offset + bytes)),
            };
            offset += bytes;
        }
        byte[] json = Encoding.UTF8.GetBytes(header.ToJsonString());
        int padding = (Alignment - json.Length % Alignment) % Alignment;   // the reference writer pads the header with spaces
        byte[] headerBytes = new byte[json.Length + padding];
        json.CopyTo(headerBytes, 0);
        headerBytes.AsSpan(json.Length).Fill((byte)' ');

        string directory = System.IO.Path.GetDirectoryName(System.IO.Path.GetFullPath(path))!;
        Directory.CreateDirectory(directory);
        string temp = System.IO.Path.Combine(directory, $".{System.IO.Path.GetFileName(path)}.{Guid.NewGuid():N}.tmp");
        try
        {
            using (var stream = new FileStream(temp, FileMode.CreateNew, FileAccess.Write, FileShare.None, 1 << 20))
            {
                Span<byte> lengthBytes = stackalloc byte[8];
                BinaryPrimitives.WriteInt64LittleEndian(lengthBytes, headerBytes.Length);
                stream.Write(lengthBytes);
                stream.Write(headerBytes);
                foreach (var (_, tensor) in list)
                {
                    using var scope = torch.NewDisposeScope();
                    var flat = tensor.detach().to(CPU).contiguous().view(-1);
                    long elementsPerChunk = Math.Max(1, Math.Min(ReadChunkBytes, int.MaxValue) / tensor.ElementSize);
                    for (long start = 0; start < flat.shape[0]; start += elementsPerChunk)
                    {
                        using var slice = flat.narrow(0, start, Math.Min(elementsPerChunk, flat.shape[0] - start));
                        stream.Write(slice.bytes);
                    }
                }
            }
            File.Move(temp, path, overwrite: true);
        }
        finally
        {
            if (File.Exists(temp)) File.Delete(temp);
        }
    }

    public static long ElementSize(string dtype) => dtype switch
    {
        "F64" or "I64" or "U64" => 8,
        "F32" or "I32" or "U32" => 4,
        "F16" or "BF16" or "I16" or "U16" => 2,
        "I8" or "U8" or "BOOL" => 1,
        _ => throw new InvalidDataException($"unsupported safetensors dtype '{dtype}'"),
    };

    public static ScalarType ToScalarType(string dtype) => dtype switch
    {
        "F64" => ScalarType.Float64, "F32" => ScalarType.Float32, "F16" => ScalarType.Float16, "BF16" => ScalarType.BFloat16,
        "I64" => ScalarType.Int64, "I32" => ScalarType.Int32, "I16" => ScalarType.Int16, "I8" => ScalarType.Int8,
        "U8" => ScalarType.Byte, "BOOL" => ScalarType.Bool,
        _ => throw new InvalidDataException($"unsupported safetensors dtype '{dtype}'"),
    };

    public static string ToSafetensorsDType(ScalarType type) => type switch
    {
        ScalarType.Float64 => "F64", ScalarType.Float32 => "F32", ScalarType.Float16 => "F16", ScalarType.BFloat16 => "BF16",
        ScalarType.Int64 => "I64", ScalarType.Int32 => "I32", ScalarType.Int16 => "I16", ScalarType.Int8 => "I8",
        ScalarType.Byte => "U8", ScalarType.Bool => "BOOL",
        _ => throw new ArgumentException($"tensor dtype {type} cannot be stored in safetensors"),
    };

    /// <summary>"[a, b, c]", the way load errors print shapes.</summary>
    public static string FormatShape(IEnumerable<long> shape) => "[" + string.Join(", ", shape) + "]";
}
