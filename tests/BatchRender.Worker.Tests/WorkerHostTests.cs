using System.Net;
using System.Net.Sockets;
using BatchRender.Core.Configuration;
using BatchRender.Core.Tests.Infrastructure;
using BatchRender.Core.Transport;
using BatchRender.Model.Pipelines;
using BatchRender.Worker.Rendering;
using BatchRender.Worker.Tests.Infrastructure;
using Microsoft.AspNetCore.Builder;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;

namespace BatchRender.Worker.Tests;

/// <summary>The worker host as the container runs it (WorkerApplication: DI, hosted services, health endpoints) on Azurite.</summary>
public sealed class WorkerHostTests(AzuriteFixture azurite) : IClassFixture<AzuriteFixture>
{
    [Fact]
    public async Task Healthz_answers_and_readyz_turns_ready_once_models_are_loaded_and_the_queue_is_reached()
    {
        var (app, port) = await StartAsync(preload: "demo");
        try
        {
            using var http = new HttpClient { BaseAddress = new Uri($"http://127.0.0.1:{port}") };
            Assert.Equal(HttpStatusCode.OK, (await http.GetAsync(HealthEndpoints.Live)).StatusCode);
            var deadline = DateTime.UtcNow.AddSeconds(30);
            HttpResponseMessage ready;
            while ((ready = await http.GetAsync(HealthEndpoints.Ready)).StatusCode != HttpStatusCode.OK && DateTime.UtcNow < deadline)
                await Task.Delay(100);
            Assert.Equal(HttpStatusCode.OK, ready.StatusCode);
        }
        finally
        {
            await app.StopAsync();
            await app.DisposeAsync();
        }
    }

    [Fact]
    public async Task Readyz_stays_unready_with_the_reason_when_a_preloaded_model_cannot_be_loaded()
    {
        var (app, port) = await StartAsync(preload: "missing-model");
        try
        {
            using var http = new HttpClient { BaseAddress = new Uri($"http://127.0.0.1:{port}") };
            await Task.Delay(1000);
            Assert.Equal(HttpStatusCode.OK, (await http.GetAsync(HealthEndpoints.Live)).StatusCode);
            var ready = await http.GetAsync(HealthEndpoints.Ready);
            Assert.Equal(HttpStatusCode.ServiceUnavailable, ready.StatusCode);
        }
        finally
        {
            await app.StopAsync();
            await app.DisposeAsync();
        }
    }

    [Fact]
    public async Task The_pipeline_engine_fails_a_task_for_an_unconfigured_model_permanently_without_loading_anything()
    {
        var configuration = new ConfigurationBuilder().AddInMemoryCollection(new Dictionary<string, string?> { ["Models:demo:Path"] = "/models/demo" }).Build();
        var loads = 0;
        using var engine = new PipelineRenderEngine(_ => { loads++; throw new InvalidOperationException("must not load"); }, configuration,
            Options.Create(new WorkerOptions()), Options.Create(new BlobOptions()), azurite.BlobService(), NullLogger<PipelineRenderEngine>.Instance);

        var outcomes = await engine.RenderAsync([WorkerHarness.Image("j", "a", model: "hunyuan-dit-v1.2"), WorkerHarness.Image("j", "b", model: "hunyuan-dit-v1.2")]);

        Assert.Equal(2, outcomes.Count);
        Assert.All(outcomes, o => Assert.Equal(DeadLetterReasons.UnknownModel, o.Failure?.Reason));
        Assert.Contains("configured: demo", outcomes[0].Failure!.Description);
        Assert.Equal(0, loads);
        await Assert.ThrowsAsync<ArgumentException>(() => engine.RenderAsync([WorkerHarness.Image("j", "a", 64), WorkerHarness.Image("j", "b", 96)]));
        Assert.Equal(QuantizationMode.Int8Dynamic, WireNames.ParseQuantization(WorkerHarness.Image("j", "a").Params.Quantization));
    }

    private async Task<(WebApplication App, int Port)> StartAsync(string preload)
    {
        var port = FreePort();
        var name = AzuriteFixture.UniqueName("host")[..30];
        var app = WorkerApplication.Create([], builder =>
        {
            builder.Configuration.AddInMemoryCollection(new Dictionary<string, string?>
            {
                [ConfigSections.Storage] = azurite.ConnectionString,
                ["Transport:QueueName"] = name,
                ["Transport:PoisonQueueName"] = name + "-poison",
                ["Worker:HealthPort"] = port.ToString(),
                ["Worker:Preload:0"] = preload,
                ["Models:demo:Path"] = "/models/demo",
                ["State:JobsTable"] = name.Replace("-", "") + "jobs",
                ["State:ItemsTable"] = name.Replace("-", "") + "items",
            });
            builder.Services.AddSingleton<IRenderEngine>(new DeterministicTestRenderEngine());
        });
        await app.StartAsync();
        return (app, port);
    }

    private static int FreePort()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
    }
}
