using System.CommandLine;
using BatchRender.Model.Pipelines;
using BatchRender.Worker;
using Microsoft.Extensions.Hosting;

namespace BatchRender.Cli.Commands;

/// <summary><c>worker</c>: the render worker host (the worker project's registration, the TorchSharp pipeline) until Ctrl-C/SIGTERM.</summary>
public static class WorkerCommand
{
    public static Command Create()
    {
        var command = new Command("worker", "Run a render worker against the configured storage until Ctrl-C (drains the batch in hand)");
        command.SetAction((parse, ct) => CliRunner.RunAsync(parse, async configuration =>
        {
            var builder = CliHost.CreateBuilder(configuration, addCore: false); // AddBatchRenderWorker adds Core
            builder.Services.AddBatchRenderWorker(configuration).AddRenderPipeline(options => HunyuanDiTPipeline.Load(options));
            using var host = builder.Build();
            Console.Error.WriteLine("worker: receiving render tasks; Ctrl-C to stop");
            await host.RunAsync(ct);
            return ExitCodes.Success;
        }));
        return command;
    }
}
