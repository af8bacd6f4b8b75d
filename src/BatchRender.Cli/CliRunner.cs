using System.CommandLine;
using Microsoft.Extensions.Configuration;

namespace BatchRender.Cli;

/// <summary>Runs a command body with configuration and maps failures to exit codes: bad input 2, anything else 1.</summary>
public static class CliRunner
{
    public static async Task<int> RunAsync(ParseResult parse, Func<IConfigurationRoot, Task<int>> body)
    {
        try
        {
            return await body(CliConfiguration.Build(parse));
        }
        catch (CliInputException e)
        {
            Console.Error.WriteLine($"error: {e.Message}");
            return ExitCodes.InvalidInput;
        }
        catch (OperationCanceledException)
        {
            Console.Error.WriteLine("cancelled");
            return ExitCodes.Failure;
        }
        catch (Exception e)
        {
            Console.Error.WriteLine($"error: {e.Message}");
            if (Environment.GetEnvironmentVariable("BATCHRENDER_DEBUG") is "1") Console.Error.WriteLine(e);
            return ExitCodes.Failure;
        }
    }
}
