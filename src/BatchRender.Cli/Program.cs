using System.CommandLine;
using BatchRender.Cli;

// batchrender: the command line of BatchRender (DESIGN.md "CLI"). Exit codes: 0 success, 2 invalid input, 1 anything else.
// Ctrl-C/SIGTERM cancel the command's token; long-running commands (worker, ingest, demo) get time to drain before the
// process gives up on them (the worker's Worker:DrainTimeout is 50 s by default).
return await BatchRenderCommand.Create().Parse(args).InvokeAsync(new InvocationConfiguration { ProcessTerminationTimeout = TimeSpan.FromSeconds(70) });
