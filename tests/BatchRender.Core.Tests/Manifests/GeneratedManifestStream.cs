using System.Text;

namespace BatchRender.Core.Tests.Manifests;

/// <summary>
/// A large manifest produced on the fly as it is read (never held in memory by the test either), with a hook that runs
/// once when a given fraction of it has been read: the memory tests measure the live heap there.
/// </summary>
public sealed class GeneratedManifestStream(int items, int promptLength, double hookAt = 2, Action? hook = null) : Stream
{
    private readonly long _hookAtItem = (long)(items * hookAt);
    private readonly string _prompt = string.Concat(Enumerable.Repeat("红色五角星 a red star ", promptLength / 16 + 1))[..promptLength];
    private byte[] _pending = Encoding.UTF8.GetBytes("""{ "schemaVersion": 1, "jobId": "big", "defaults": { "steps": 10 }, "items": [""" + "\n");
    private int _pendingOffset;
    private int _next;
    private bool _done;

    public override int Read(byte[] buffer, int offset, int count) => Read(buffer.AsSpan(offset, count));

    public override int Read(Span<byte> buffer)
    {
        while (_pendingOffset == _pending.Length)
        {
            if (_done) return 0;
            if (_next == _hookAtItem) hook?.Invoke();
            if (_next < items)
            {
                var i = _next++;
                var comma = i + 1 < items ? "," : "";
                var extra = (i % 3) switch
                {
                    0 => "",
                    1 => $"\"seed\": {i}, \"width\": 64, \"height\": 96",
                    _ => "\"video\": { \"frames\": 4 }",
                };
                _pending = Encoding.UTF8.GetBytes($$"""{ "id": "item-{{i}}", "prompt": "{{_prompt}} {{i}}"{{(extra.Length > 0 ? ", " + extra : "")}} }{{comma}}""" + "\n");
            }
            else
            {
                _pending = "]}\n"u8.ToArray();
                _done = true;
            }
            _pendingOffset = 0;
        }
        var n = Math.Min(buffer.Length, _pending.Length - _pendingOffset);
        _pending.AsSpan(_pendingOffset, n).CopyTo(buffer);
        _pendingOffset += n;
        return n;
    }

    public override ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default) => new(Read(buffer.Span));
    public override Task<int> ReadAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) => Task.FromResult(Read(buffer, offset, count));

    public override bool CanRead => true;
    public override bool CanSeek => false;
    public override bool CanWrite => false;
    public override long Length => throw new NotSupportedException();
    public override long Position { get => throw new NotSupportedException(); set => throw new NotSupportedException(); }
    public override void Flush() { }
    public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
    public override void SetLength(long value) => throw new NotSupportedException();
    public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();
}
