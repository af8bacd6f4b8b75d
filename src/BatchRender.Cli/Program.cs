using BatchRender.Cli;

// batchrender: the command line of BatchRender (DESIGN.md "CLI"). Exit codes: 0 success, 2 invalid input, 1 anything else.
return await BatchRenderCommand.Create().Parse(args).InvokeAsync();
