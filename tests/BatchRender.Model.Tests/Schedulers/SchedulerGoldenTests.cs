using System.Text.Json;
using BatchRender.Model.Pipelines;
using BatchRender.Model.Schedulers;
using BatchRender.Model.Tests.Golden;
using TorchSharp;
using static TorchSharp.torch;

namespace BatchRender.Model.Tests.Schedulers;

/// <summary>
/// The samplers against diffusers' own DDPMScheduler / DDIMScheduler / DPMSolverMultistepScheduler
/// (bench/golden/make_golden.py): same config, same timesteps and tables, same trajectory on a fake model
/// output = 0.5 x + eps_i, DDPM noise drawn from an equally seeded CPU generator.
/// </summary>
public class SchedulerGoldenTests
{
    public static TheoryData<int> Cases()
    {
        using var doc = JsonDocument.Parse(File.ReadAllText(Path.Combine(AppContext.BaseDirectory, "Golden", "schedulers.json")));
        var data = new TheoryData<int>();
        for (int i = 0; i < doc.RootElement.GetArrayLength(); i++) data.Add(i);
        return data;
    }

    [Theory]
    [MemberData(nameof(Cases))]
    public void Timesteps_tables_and_trajectory_match_diffusers(int index)
    {
        using var doc = JsonDocument.Parse(File.ReadAllText(Path.Combine(AppContext.BaseDirectory, "Golden", "schedulers.json")));
        var c = doc.RootElement[index];
        var scheduler = SchedulerFactory.Create(WireNames.ParseSampler(c.GetProperty("sampler").GetString()!),
            SchedulerConfig.Parse(c.GetProperty("config").GetRawText()));
        using var golden = new GoldenFile("schedulers.safetensors");
        Tensor G(string key) => golden[$"case{index}.{key}"].cpu();

        scheduler.SetTimesteps(c.GetProperty("steps").GetInt32());
        Assert.Equal(G("timesteps").data<long>().ToArray(), scheduler.Timesteps.ToArray());
        // Same float32 operations as diffusers; PyTorch 1.13 and libtorch 2.10 may round the cumulative product 1 ulp apart.
        GoldenFile.AssertClose(G("alphas_cumprod"), tensor(scheduler.Schedule.AlphasCumprod.ToArray()), 1e-6);
        if (scheduler is DpmSolverMultistepScheduler dpm)
            GoldenFile.AssertClose(G("sigmas"), tensor(dpm.Sigmas.ToArray()), 1e-6);

        var samples = G("samples");
        var eps = G("eps");
        var x = samples[0];
        using var noise = new Generator((ulong)c.GetProperty("noise_seed").GetInt32());
        for (int j = 0; j < scheduler.Timesteps.Count; j++)
        {
            x = scheduler.Step(0.5 * x + eps[j], scheduler.Timesteps[j], x, noise);
            GoldenFile.AssertClose(samples[j + 1], x, 1e-4);
        }
    }
}
