using BatchRender.Core.Hosting;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

namespace BatchRender.Cli;

/// <summary>
/// The generic host behind the commands that talk to storage: the CLI's configuration, Core's registration
/// (<c>AddBatchRenderCore</c>: the Azure clients with one <c>DefaultAzureCredential</c>, validated options), and logs on
/// stderr so stdout stays for results (<c>--json</c>).
/// </summary>
public static class CliHost
{
    /// <param name="addCore">False when the caller registers a superset that adds Core itself (the worker's registration).</param>
    public static HostApplicationBuilder CreateBuilder(IConfiguration configuration, bool addCore = true)
    {
        var builder = Host.CreateApplicationBuilder(new HostApplicationBuilderSettings { DisableDefaults = true });
        builder.Configuration.AddConfiguration(configuration);
        builder.Logging.AddConfiguration(configuration.GetSection("Logging"));
        builder.Logging.AddSimpleConsole(o => o.SingleLine = true);
        builder.Services.Configure<Microsoft.Extensions.Logging.Console.ConsoleLoggerOptions>(o => o.LogToStandardErrorThreshold = LogLevel.Trace);
        if (addCore) builder.Services.AddBatchRenderCore(builder.Configuration);
        return builder;
    }

    /// <summary>A started host with Core only (submit, status, cancel): options are validated on start.</summary>
    public static async Task<IHost> StartCoreAsync(IConfiguration configuration, CancellationToken cancellationToken)
    {
        var host = CreateBuilder(configuration).Build();
        await host.StartAsync(cancellationToken);
        return host;
    }
}
