namespace BatchRender.Worker.Processing;

/// <summary>Who rendered an item (recorded in item state and sidecars): the pod or machine name, the process and a
/// per-instance suffix, so two workers in one process (tests, the CLI demo) are told apart.</summary>
public sealed class WorkerIdentity
{
    public string Id { get; } = $"{Environment.MachineName}-{Environment.ProcessId}-{Guid.NewGuid().ToString("N")[..6]}";

    public override string ToString() => Id;
}
