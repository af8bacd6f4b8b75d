using BatchRender.Model.Pipelines;
using BatchRender.Worker;

// The container's entry point: receive render tasks, render them with the TorchSharp Hunyuan-DiT pipeline (one per
// model and quantization, loaded once and kept warm), write, complete; /healthz and /readyz on Worker:HealthPort.
var app = WorkerApplication.Create(args, builder =>
    builder.Services.AddRenderPipeline(options => HunyuanDiTPipeline.Load(options)));
await app.RunAsync();
