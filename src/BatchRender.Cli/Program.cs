using System.CommandLine;
using BatchRender.Cli;
using BatchRender.Cli.Commands;

// batchrender: the command line of BatchRender (DESIGN.md "CLI"). Exit codes: 0 success, 2 invalid input, 1 anything else.
var root = new RootCommand("BatchRender: batch image and video rendering with Hunyuan-DiT, on Azure or locally on Azurite.")
{
    CliConfiguration.ConfigOption,
    ValidateCommand.Create(),
    SubmitCommand.Create(),
    StatusCommand.Create(),
    CancelCommand.Create(),
    RenderCommand.Create(),
};
return await root.Parse(args).InvokeAsync();
