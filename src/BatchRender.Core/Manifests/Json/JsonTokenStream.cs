using System.Buffers;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using System.Text.Unicode;

namespace BatchRender.Core.Manifests.Json;

/// <summary>A problem that ends reading: the bytes are not (UTF-8) JSON from here on.</summary>
internal sealed class JsonFormatException(string path, string message) : Exception(message)
{
    public string Path { get; } = path;
}

/// <summary>How a JSON number reads as a value (decided once, when the token is read).</summary>
internal enum JsonNumberKind
{
    /// <summary>A whole number that fits a long (1, -0, 7.0 and 1e3 all count).</summary>
    Integer,
    /// <summary>A whole number beyond the range of a long (2^64, 1e30).</summary>
    HugeInteger,
    /// <summary>A finite number with a fractional part.</summary>
    Fraction,
    /// <summary>Beyond what a double holds (1e400).</summary>
    Overflow,
}

/// <summary>
/// Forward-only JSON tokens from a <see cref="Stream"/>: a <see cref="Utf8JsonReader"/> over a pooled buffer that is refilled
/// from the stream, so memory stays at the size of the largest single token however long the document is. It also
/// checks the encoding (UTF-8, optional BOM), hashes every byte it reads (SHA-256) and tracks the JSON path of the
/// current token, so callers can name where a problem is.
/// </summary>
internal sealed class JsonTokenStream : IDisposable
{
    public const int MaxDepth = 64;
    private const int InitialBufferSize = 64 * 1024;
    private const int MaxNumberTextBytes = 48;

    private readonly Stream _stream;
    private readonly IProblemSink _problems;
    private readonly int _maxTokenBytes;
    private readonly IncrementalHash? _hash;
    private readonly List<PathFrame> _frames = new(8);
    private byte[] _buffer;
    private int _start, _end;
    private long _bufferOffset;
    private bool _eof, _started, _finished;
    private JsonReaderState _state = new(new JsonReaderOptions { MaxDepth = MaxDepth });
    private readonly byte[] _numberText = new byte[MaxNumberTextBytes];
    private int _numberTextLength;
    private long _lineCorrection;
    private bool _numberTextTruncated;

    public JsonTokenStream(Stream stream, IProblemSink problems, int maxTokenBytes, bool computeHash,
        Func<string, string, Exception>? formatError = null)
    {
        FormatError = formatError ?? ((path, message) => new JsonFormatException(path, message));
        _stream = stream;
        _problems = problems;
        _maxTokenBytes = Math.Max(maxTokenBytes, 4096);
        _hash = computeHash ? IncrementalHash.CreateHash(HashAlgorithmName.SHA256) : null;
        _buffer = ArrayPool<byte>.Shared.Rent(Math.Min(InitialBufferSize, _maxTokenBytes));
    }

    /// <summary>Makes the exception thrown when the bytes stop being UTF-8 JSON (path, message).</summary>
    public Func<string, string, Exception> FormatError { get; }

    public JsonTokenType TokenType { get; private set; }
    /// <summary>Depth of the current token as <see cref="Utf8JsonReader.CurrentDepth"/> counts it.</summary>
    public int Depth { get; private set; }
    /// <summary>The decoded text of a String or PropertyName token.</summary>
    public string? String { get; private set; }
    public JsonNumberKind NumberKind { get; private set; }
    public long Int64 { get; private set; }
    public double Double { get; private set; }
    /// <summary>Byte offset in the stream where the current token starts (a UTF-8 BOM counts).</summary>
    public long TokenStart { get; private set; }
    /// <summary>Byte offset in the stream just after the current token.</summary>
    public long TokenEnd { get; private set; }
    /// <summary>All bytes read from the stream so far.</summary>
    public long BytesRead { get; private set; }

    /// <summary>The number as written (shortened when very long), for messages.</summary>
    public string NumberText =>
        Encoding.UTF8.GetString(_numberText, 0, _numberTextLength) + (_numberTextTruncated ? "…" : "");

    /// <summary>The JSON path of the current token's value: <c>items[3].width</c>, <c>$</c> for the root.</summary>
    public string CurrentPath => JsonPaths.Format(_frames);

    /// <summary>SHA-256 of every byte read (call after the stream has been read to its end).</summary>
    public byte[] GetHashAndReset() => _hash?.GetHashAndReset() ?? throw new InvalidOperationException("hashing is off");

    /// <summary>Reads the next token; false at the end of the document. Throws <see cref="JsonFormatException"/>
    /// when the bytes are not UTF-8 JSON.</summary>
    public async ValueTask<bool> ReadAsync(CancellationToken cancellationToken)
    {
        if (_finished) return false;
        if (!_started)
        {
            await StartAsync(cancellationToken).ConfigureAwait(false);
            _started = true;
        }
        while (true)
        {
            if (TryReadBuffered()) return true;
            if (_eof)
            {
                _finished = true;
                return false;
            }
            if (_start == 0 && _end == _buffer.Length) DropWhitespace();
            await FillAsync(cancellationToken).ConfigureAwait(false);
        }
    }

    private async ValueTask StartAsync(CancellationToken cancellationToken)
    {
        while (_end < 4 && !_eof) await FillAsync(cancellationToken).ConfigureAwait(false);
        var head = _buffer.AsSpan(0, _end);
        if (head.StartsWith(new byte[] { 0xEF, 0xBB, 0xBF })) { _start = 3; return; }
        var encoding =
            head.StartsWith(new byte[] { 0xFF, 0xFE, 0, 0 }) ? "UTF-32 (little-endian)" :
            head.StartsWith(new byte[] { 0, 0, 0xFE, 0xFF }) ? "UTF-32 (big-endian)" :
            head.StartsWith(new byte[] { 0xFF, 0xFE }) ? "UTF-16 (little-endian)" :
            head.StartsWith(new byte[] { 0xFE, 0xFF }) ? "UTF-16 (big-endian)" : null;
        if (encoding is not null)
            throw FormatError("$", $"the file is encoded as {encoding}: it starts with that byte-order mark; save it as UTF-8");
        if (head.Length >= 2 && head[..Math.Min(head.Length, 4)].IndexOf((byte)0) >= 0)
            throw FormatError("$", "the file contains NUL bytes at its start, so it looks like UTF-16 or UTF-32 without a byte-order mark; save it as UTF-8");
    }

    private async ValueTask FillAsync(CancellationToken cancellationToken)
    {
        cancellationToken.ThrowIfCancellationRequested();
        if (_start > 0)
        {
            Buffer.BlockCopy(_buffer, _start, _buffer, 0, _end - _start);
            _bufferOffset += _start;
            _end -= _start;
            _start = 0;
        }
        if (_end == _buffer.Length)
        {
            // One token fills the whole buffer: grow it, up to the largest token any field can need.
            if (_buffer.Length >= _maxTokenBytes)
                throw FormatError(CurrentPath,
                    $"a single value here is longer than {_maxTokenBytes:N0} bytes; no field of a manifest needs that much");
            var larger = ArrayPool<byte>.Shared.Rent(Math.Min(_buffer.Length * 2, _maxTokenBytes));
            Buffer.BlockCopy(_buffer, 0, larger, 0, _end);
            ArrayPool<byte>.Shared.Return(_buffer);
            _buffer = larger;
        }
        var read = await _stream.ReadAsync(_buffer.AsMemory(_end), cancellationToken).ConfigureAwait(false);
        if (read == 0)
        {
            _eof = true;
            return;
        }
        _hash?.AppendData(_buffer, _end, read);
        _end += read;
        BytesRead += read;
    }

    /// <summary>
    /// The reader leaves whitespace between tokens unconsumed until it sees the next token, so a run of whitespace longer
    /// than the buffer would look like one huge token. When the buffer is full and no token fits, drop the whitespace
    /// at its start (around a leading ',' or ':'): it carries no meaning. Dropped line breaks are counted so error
    /// messages keep their line numbers, and absolute offsets are kept right for every byte after the cut.
    /// </summary>
    private void DropWhitespace()
    {
        var i = _start;
        while (i < _end && IsWhitespace(_buffer[i])) _lineCorrection += _buffer[i++] == (byte)'\n' ? 1 : 0;
        _start = i;
        if (i >= _end || _buffer[i] is not ((byte)',' or (byte)':')) return;
        var from = i + 1;
        var to = from;
        while (to < _end && IsWhitespace(_buffer[to])) _lineCorrection += _buffer[to++] == (byte)'\n' ? 1 : 0;
        if (to == from) return;
        Buffer.BlockCopy(_buffer, to, _buffer, from, _end - to);
        _end -= to - from;
        _bufferOffset += to - from;

        static bool IsWhitespace(byte b) => b is (byte)' ' or (byte)'\t' or (byte)'\n' or (byte)'\r';
    }

    private bool TryReadBuffered()
    {
        var reader = new Utf8JsonReader(_buffer.AsSpan(_start, _end - _start), _eof, _state);
        bool read;
        try
        {
            read = reader.Read();
        }
        catch (JsonException e)
        {
            throw FormatError(CurrentPath, JsonSyntaxMessages.Describe(e, _lineCorrection));
        }
        if (read) Capture(ref reader);
        _start += (int)reader.BytesConsumed;
        _state = reader.CurrentState;
        if (read) TokenEnd = _bufferOffset + _start;
        return read;
    }

    private void Capture(ref Utf8JsonReader reader)
    {
        TokenType = reader.TokenType;
        Depth = reader.CurrentDepth;
        TokenStart = _bufferOffset + _start + reader.TokenStartIndex;
        String = null;
        string? encodingProblem = null;
        switch (TokenType)
        {
            case JsonTokenType.PropertyName:
                String = DecodeString(ref reader, out encodingProblem);
                _frames[^1] = _frames[^1] with { Property = String };
                if (encodingProblem is not null) _problems.Report(CurrentPath, "the key " + encodingProblem);
                return;
            case JsonTokenType.EndObject:
            case JsonTokenType.EndArray:
                _frames.RemoveAt(_frames.Count - 1);
                return;
        }
        // A value: it takes the next index when it sits in an array.
        if (_frames.Count > 0 && _frames[^1].IsArray) _frames[^1] = _frames[^1] with { Index = _frames[^1].Index + 1 };
        switch (TokenType)
        {
            case JsonTokenType.StartObject: _frames.Add(new PathFrame(false, -1, null)); break;
            case JsonTokenType.StartArray: _frames.Add(new PathFrame(true, -1, null)); break;
            case JsonTokenType.Number: CaptureNumber(ref reader); break;
            case JsonTokenType.String:
                String = DecodeString(ref reader, out encodingProblem);
                if (encodingProblem is not null) _problems.Report(CurrentPath, "the text " + encodingProblem);
                break;
        }
    }

    private static string DecodeString(ref Utf8JsonReader reader, out string? problem)
    {
        problem = null;
        try
        {
            return reader.GetString()!;
        }
        catch (InvalidOperationException)
        {
            var raw = reader.ValueSpan;
            problem = Utf8.IsValid(raw)
                ? "contains an invalid \\u escape: a lone surrogate (a \\uD800-\\uDBFF escape must be followed by a \\uDC00-\\uDFFF one)"
                : "contains bytes that are not valid UTF-8; save the manifest as UTF-8";
            return Encoding.UTF8.GetString(raw);
        }
    }

    private void CaptureNumber(ref Utf8JsonReader reader)
    {
        var raw = reader.ValueSpan;
        _numberTextTruncated = raw.Length > MaxNumberTextBytes;
        _numberTextLength = Math.Min(raw.Length, MaxNumberTextBytes);
        raw[.._numberTextLength].CopyTo(_numberText);
        if (reader.TryGetInt64(out var l))
        {
            (NumberKind, Int64, Double) = (JsonNumberKind.Integer, l, l);
        }
        else if (reader.TryGetDecimal(out var d))
        {
            var whole = d == decimal.Truncate(d);
            if (whole && d >= long.MinValue && d <= long.MaxValue) (NumberKind, Int64, Double) = (JsonNumberKind.Integer, (long)d, (double)d);
            else (NumberKind, Int64, Double) = (whole ? JsonNumberKind.HugeInteger : JsonNumberKind.Fraction, 0, (double)d);
        }
        else if (reader.TryGetDouble(out var x) && double.IsFinite(x))
        {
            // Past decimal's range (about 7.9e28), so only whole numbers can be here.
            (NumberKind, Int64, Double) = (x == Math.Floor(x) ? JsonNumberKind.HugeInteger : JsonNumberKind.Fraction, 0, x);
        }
        else
        {
            (NumberKind, Int64, Double) = (JsonNumberKind.Overflow, 0, double.NaN);
        }
    }

    /// <summary>Reads the rest of the stream into the hash without parsing it (after a format error, so the content
    /// hash still covers every byte).</summary>
    public async ValueTask DrainAsync(CancellationToken cancellationToken)
    {
        _finished = true;
        while (!_eof)
        {
            _start = _end = 0;
            await FillAsync(cancellationToken).ConfigureAwait(false);
        }
    }

    public void Dispose()
    {
        _hash?.Dispose();
        if (_buffer.Length > 0) ArrayPool<byte>.Shared.Return(_buffer);
        _buffer = [];
    }
}

/// <summary>One open container on the path: an object (with the current key) or an array (with the current index).</summary>
internal readonly record struct PathFrame(bool IsArray, int Index, string? Property);

internal static class JsonPaths
{
    public const string Root = "$";

    public static string Format(IReadOnlyList<PathFrame> frames)
    {
        var sb = new StringBuilder();
        foreach (var frame in frames)
        {
            if (frame.IsArray)
            {
                if (frame.Index >= 0) sb.Append('[').Append(frame.Index).Append(']');
            }
            else if (frame.Property is { } name)
            {
                AppendProperty(sb, name);
            }
        }
        return sb.Length == 0 ? Root : sb.ToString();
    }

    public static string Property(string parent, string name)
    {
        var sb = new StringBuilder(parent == Root ? "" : parent);
        AppendProperty(sb, name);
        return sb.ToString();
    }

    private static void AppendProperty(StringBuilder sb, string name)
    {
        var plain = name.Length > 0 && !char.IsAsciiDigit(name[0]) && name.All(c => char.IsAsciiLetterOrDigit(c) || c == '_');
        if (plain)
        {
            if (sb.Length > 0) sb.Append('.');
            sb.Append(name);
        }
        else
        {
            sb.Append('[').Append(StrictJsonReader.Quote(name)).Append(']');
        }
    }
}

/// <summary>Plain-words versions of <see cref="Utf8JsonReader"/>'s syntax errors, with 1-based line and column.</summary>
internal static partial class JsonSyntaxMessages
{
    [System.Text.RegularExpressions.GeneratedRegex("'0x([01][0-9A-F])'")]
    private static partial System.Text.RegularExpressions.Regex ControlByte();

    [System.Text.RegularExpressions.GeneratedRegex("'0x[89A-F][0-9A-F]'")]
    private static partial System.Text.RegularExpressions.Regex NonAsciiByte();

    public static string Describe(JsonException e, long skippedLines = 0)
    {
        var where = $"line {(e.LineNumber ?? 0) + skippedLines + 1}, column {(e.BytePositionInLine ?? 0) + 1}";
        var raw = e.Message;
        var cut = raw.IndexOf(" LineNumber:", StringComparison.Ordinal);
        if (cut >= 0) raw = raw[..cut];
        var what =
            raw.Contains("maximum configured depth", StringComparison.Ordinal) ? $"objects and arrays are nested deeper than {JsonTokenStream.MaxDepth} levels" :
            raw.Contains("does not contain any JSON tokens", StringComparison.Ordinal) ? "the file is empty (or only whitespace); a manifest is a JSON object" :
            raw.Contains("trailing comma", StringComparison.Ordinal) ? "a trailing comma before '}' or ']' is not allowed in JSON" :
            raw.Contains("Expected depth to be zero", StringComparison.Ordinal) ? "the JSON ends before every object and array is closed (is the file truncated?)" :
            raw.Contains("reached end of data", StringComparison.Ordinal) ? "the JSON ends in the middle of a value (is the file truncated?)" :
            raw.StartsWith("'/'", StringComparison.Ordinal) || raw.Contains("comment", StringComparison.OrdinalIgnoreCase)
                ? "comments ('//' or '/* */') are not allowed in JSON" :
            raw.Contains("after a single JSON value", StringComparison.Ordinal) ? "there is more text after the end of the JSON document" :
            ControlByte().Match(raw) is { Success: true } control && raw.Contains("within a JSON string", StringComparison.Ordinal)
                ? $"control character U+00{control.Groups[1].Value} must be escaped inside a JSON string (write \\u00{control.Groups[1].Value})" :
            NonAsciiByte().IsMatch(raw) ? $"{raw.TrimEnd('.')} (bytes that are not valid UTF-8 JSON; save the manifest as UTF-8)" :
            raw.TrimEnd('.');
        return $"invalid JSON at {where}: {what}";
    }
}
