using BatchRender.Core.Hosting;
using Microsoft.Azure.Functions.Worker.Builder;
using Microsoft.Extensions.Hosting;

// Thin functions over Core's ingestion and status services (Functions/): the manifest blob trigger, the schedule
// timer and the jobs HTTP API. Settings: the same names as the worker's (Storage, ServiceBus, Transport, Blobs, ...).
var builder = FunctionsApplication.CreateBuilder(args);
// The served model names (Models:*) ship in appsettings.json beside the app: a name such as hunyuan-dit-v1.2 cannot be
// an App Service setting. Environment variables still override it.
builder.Configuration.Sources.Insert(0, new Microsoft.Extensions.Configuration.Json.JsonConfigurationSource
{
    Path = Path.Combine(AppContext.BaseDirectory, "appsettings.json"), Optional = true, ReloadOnChange = false,
});
builder.ConfigureFunctionsWebApplication();
builder.Services.AddBatchRenderCore(builder.Configuration);
builder.Build().Run();
