using System.CommandLine;
using BatchRender.Cli.Ingestion;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;

namespace BatchRender.Cli.Commands;

/// <summary><c>ingest</c>: the local ingestion loop (stand-in for the Event Grid trigger and the timer) until Ctrl-C/SIGTERM.</summary>
public static class IngestCommand
{
    public const string Section = "Ingest";

    public static Command Create()
    {
        var command = new Command("ingest", "Run the ingestion loop: ingest new manifests from the manifests container and start due schedules, until Ctrl-C");
        command.SetAction((parse, ct) => CliRunner.RunAsync(parse, async configuration =>
        {
            var builder = CliHost.CreateBuilder(configuration);
            AddLocalIngest(builder.Services, configuration);
            using var host = builder.Build();
            Console.Error.WriteLine("ingest: polling for manifests and schedules; Ctrl-C to stop");
            await host.RunAsync(ct);
            return ExitCodes.Success;
        }));
        return command;
    }

    public static IServiceCollection AddLocalIngest(IServiceCollection services, IConfiguration configuration)
    {
        services.AddOptions<LocalIngestOptions>().Bind(configuration.GetSection(Section));
        services.AddSingleton<LocalIngestService>();
        services.AddHostedService(sp => sp.GetRequiredService<LocalIngestService>());
        return services;
    }
}
