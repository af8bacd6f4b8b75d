using BatchRender.Core.Hosting;
using Microsoft.Azure.Functions.Worker.Builder;
using Microsoft.Extensions.Hosting;

// Thin functions over Core's ingestion and status services (Functions/): the manifest blob trigger, the schedule
// timer and the jobs HTTP API. Settings: the same names as the worker's (Storage, ServiceBus, Transport, Blobs, ...).
var builder = FunctionsApplication.CreateBuilder(args);
builder.ConfigureFunctionsWebApplication();
builder.Services.AddBatchRenderCore(builder.Configuration);
builder.Build().Run();
