using BatchRender.Model.Pipelines;

namespace BatchRender.Model.Schedulers;

/// <summary>
/// Builds the sampler a render asks for from the model's scheduler_config.json, whichever class that file was written
/// for (Hunyuan-DiT ships a DDPMScheduler config): like diffusers' <c>XScheduler.from_config(config)</c>, the keys the
/// sampler knows are taken and the rest ignored.
/// </summary>
public static class SchedulerFactory
{
    public static IScheduler Create(SamplerKind kind, SchedulerConfig config) => kind switch
    {
        SamplerKind.Ddpm => new DdpmScheduler(config),
        SamplerKind.Ddim => new DdimScheduler(config),
        SamplerKind.DpmSolverPlusPlus => new DpmSolverMultistepScheduler(config),
        _ => throw new ArgumentOutOfRangeException(nameof(kind), kind, "unknown sampler"),
    };

    /// <summary>Reads scheduler_config.json from a model directory's scheduler/ folder (or the given file).</summary>
    public static IScheduler Create(SamplerKind kind, string schedulerConfigPath) =>
        Create(kind, SchedulerConfig.Load(schedulerConfigPath));
}
