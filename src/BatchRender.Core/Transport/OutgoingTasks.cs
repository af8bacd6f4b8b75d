using System.Text.Json;
using BatchRender.Core.Messages;
using BatchRender.Core.Telemetry;

namespace BatchRender.Core.Transport;

/// <summary>Turns render task messages into transport tasks: body, stable MessageId (<see cref="RenderTaskMessage.ComputeMessageId"/>), jobId/itemId and trace context.</summary>
public static class OutgoingTasks
{
    public static OutgoingTask From(RenderTaskMessage message)
    {
        var body = BinaryData.FromBytes(JsonSerializer.SerializeToUtf8Bytes(message, RenderTaskMessageJsonContext.Default.RenderTaskMessage));
        var properties = new Dictionary<string, string>
        {
            [TaskProperties.JobId] = message.JobId,
            [TaskProperties.ItemId] = message.ItemId,
        };
        BatchRenderTelemetry.InjectTraceContext(properties);
        return new OutgoingTask(message.ComputeMessageId(), body, properties);
    }

    /// <summary>Reads a task body; null when it is not a render task message (the caller dead-letters it).</summary>
    public static RenderTaskMessage? TryParse(BinaryData body, out string? error)
    {
        try
        {
            var message = JsonSerializer.Deserialize(body.ToMemory().Span, RenderTaskMessageJsonContext.Default.RenderTaskMessage);
            error = message is null || message.JobId is null || message.ItemId is null || message.Params is null
                ? "the body is not a render task message (jobId, itemId and params are required)"
                : null;
            return error is null ? message : null;
        }
        catch (JsonException e)
        {
            error = $"the body is not valid JSON: {e.Message}";
            return null;
        }
    }
}
