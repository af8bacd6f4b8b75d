using System.CommandLine;
using BatchRender.Cli.Commands;

namespace BatchRender.Cli;

/// <summary>The root command of <c>batchrender</c> (DESIGN.md "CLI"). Exit codes: 0 success, 2 invalid input, 1 anything else.</summary>
public static class BatchRenderCommand
{
    public static RootCommand Create() => new("BatchRender: batch image and video rendering with Hunyuan-DiT, on Azure or locally on Azurite.")
    {
        CliConfiguration.ConfigOption,
        ValidateCommand.Create(),
        SubmitCommand.Create(),
        StatusCommand.Create(),
        CancelCommand.Create(),
        RenderCommand.Create(),
        IngestCommand.Create(),
        BenchCommand.Create(),
        EvalCommand.Create(),
        WorkerCommand.Create(),
        DemoCommand.Create(),
        TrainCommand.Create(),
    };
}
