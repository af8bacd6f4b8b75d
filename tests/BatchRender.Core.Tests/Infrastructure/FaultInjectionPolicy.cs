using System.Diagnostics.CodeAnalysis;
using Azure;
using Azure.Core;
using Azure.Core.Pipeline;

namespace BatchRender.Core.Tests.Infrastructure;

/// <summary>
/// An Azure SDK pipeline policy that fails a fraction of requests, deterministically for a seed: a 503 before the
/// request is sent, a 503 after it was applied (the response lost), or a hang until the caller's timeout (before or
/// after sending). Add it to client options with <c>options.AddPolicy(policy, HttpPipelinePosition.PerRetry)</c>.
/// Self-contained so other test projects can link this file.
/// </summary>
public sealed class FaultInjectionPolicy(double failureRate, int seed) : HttpPipelinePolicy
{
    private readonly Random _random = new(seed);
    private readonly Lock _lock = new();
    private int _injected;
    private int _seen;

    public enum Fault { None, UnavailableBeforeSend, UnavailableAfterSend, HangBeforeSend, HangAfterSend }

    /// <summary>Only requests this predicate accepts can fail (default: all).</summary>
    public Func<HttpMessage, bool> Applies { get; init; } = _ => true;

    /// <summary>The kinds of fault to draw from (default: all four).</summary>
    public Fault[] Faults { get; init; } = [Fault.UnavailableBeforeSend, Fault.UnavailableAfterSend, Fault.HangBeforeSend, Fault.HangAfterSend];

    public int Injected => Volatile.Read(ref _injected);
    /// <summary>Requests that went through this policy (each attempt counts).</summary>
    public int Seen => Volatile.Read(ref _seen);

    private Fault Next()
    {
        lock (_lock)
        {
            if (_random.NextDouble() >= failureRate) return Fault.None;
            return Faults[_random.Next(Faults.Length)];
        }
    }

    public override void Process(HttpMessage message, ReadOnlyMemory<HttpPipelinePolicy> pipeline) =>
        ProcessAsync(message, pipeline).AsTask().GetAwaiter().GetResult();

    public override async ValueTask ProcessAsync(HttpMessage message, ReadOnlyMemory<HttpPipelinePolicy> pipeline)
    {
        Interlocked.Increment(ref _seen);
        var fault = Applies(message) ? Next() : Fault.None;
        if (fault != Fault.None) Interlocked.Increment(ref _injected);
        switch (fault)
        {
            case Fault.UnavailableBeforeSend:
                message.Response = new UnavailableResponse(message.Request.ClientRequestId);
                return;
            case Fault.HangBeforeSend:
                await Task.Delay(Timeout.Infinite, message.CancellationToken);
                return;
        }
        await ProcessNextAsync(message, pipeline);
        switch (fault)
        {
            case Fault.UnavailableAfterSend:
                message.Response = new UnavailableResponse(message.Request.ClientRequestId);
                return;
            case Fault.HangAfterSend:
                await Task.Delay(Timeout.Infinite, message.CancellationToken);
                return;
        }
    }

    /// <summary>A bare 503 Server Busy, as the storage front end answers under load.</summary>
    private sealed class UnavailableResponse(string clientRequestId) : Response
    {
        private readonly Dictionary<string, string> _headers = new(StringComparer.OrdinalIgnoreCase)
        {
            ["x-ms-error-code"] = "ServerBusy",
        };

        public override int Status => 503;
        // The pipeline classifies the transport's response; a response swapped in afterwards must say it is an error.
        public override bool IsError => true;
        public override string ReasonPhrase => "Service Unavailable (injected)";
        public override Stream? ContentStream { get; set; } = new MemoryStream();
        public override string ClientRequestId { get; set; } = clientRequestId;
        public override void Dispose() { }
        protected override bool ContainsHeader(string name) => _headers.ContainsKey(name);
        protected override IEnumerable<HttpHeader> EnumerateHeaders() => _headers.Select(h => new HttpHeader(h.Key, h.Value));
        protected override bool TryGetHeader(string name, [NotNullWhen(true)] out string? value) => _headers.TryGetValue(name, out value);
        protected override bool TryGetHeaderValues(string name, [NotNullWhen(true)] out IEnumerable<string>? values)
        {
            values = _headers.TryGetValue(name, out var value) ? [value] : null;
            return values is not null;
        }
    }
}
