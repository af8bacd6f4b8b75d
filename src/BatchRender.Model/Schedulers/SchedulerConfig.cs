using System.Text.Json;
using System.Text.Json.Serialization;
using System.Text.RegularExpressions;

namespace BatchRender.Model.Schedulers;

/// <summary>
/// diffusers' scheduler_config.json. Every key is optional: a key left out takes the default of the scheduler class
/// that reads it (diffusers' defaults differ per class, e.g. DPM-Solver defaults to "linspace" spacing while DDPM/DDIM
/// default to "leading"), and keys meant for other schedulers are ignored, as in diffusers' <c>from_config</c>.
/// </summary>
public sealed partial record SchedulerConfig
{
    [JsonPropertyName("_class_name")] public string? ClassName { get; init; }
    [JsonPropertyName("num_train_timesteps")] public int? NumTrainTimesteps { get; init; }
    [JsonPropertyName("beta_start")] public double? BetaStart { get; init; }
    [JsonPropertyName("beta_end")] public double? BetaEnd { get; init; }
    /// <summary>"linear" | "scaled_linear" | "squaredcos_cap_v2".</summary>
    [JsonPropertyName("beta_schedule")] public string? BetaSchedule { get; init; }
    [JsonPropertyName("trained_betas")] public double[]? TrainedBetas { get; init; }
    /// <summary>"epsilon" | "v_prediction" | "sample".</summary>
    [JsonPropertyName("prediction_type")] public string? PredictionType { get; init; }
    /// <summary>"leading" | "trailing" | "linspace".</summary>
    [JsonPropertyName("timestep_spacing")] public string? TimestepSpacing { get; init; }
    [JsonPropertyName("steps_offset")] public int? StepsOffset { get; init; }
    [JsonPropertyName("rescale_betas_zero_snr")] public bool? RescaleBetasZeroSnr { get; init; }
    [JsonPropertyName("clip_sample")] public bool? ClipSample { get; init; }
    [JsonPropertyName("clip_sample_range")] public double? ClipSampleRange { get; init; }
    [JsonPropertyName("thresholding")] public bool? Thresholding { get; init; }
    [JsonPropertyName("dynamic_thresholding_ratio")] public double? DynamicThresholdingRatio { get; init; }
    [JsonPropertyName("sample_max_value")] public double? SampleMaxValue { get; init; }

    // DDPM
    /// <summary>DDPM: "fixed_small" | "fixed_small_log" | "fixed_large" | "fixed_large_log"; DPM-Solver: null.</summary>
    [JsonPropertyName("variance_type")] public string? VarianceType { get; init; }

    // DDIM
    [JsonPropertyName("set_alpha_to_one")] public bool? SetAlphaToOne { get; init; }

    // DPM-Solver++ (multistep)
    [JsonPropertyName("solver_order")] public int? SolverOrder { get; init; }
    [JsonPropertyName("algorithm_type")] public string? AlgorithmType { get; init; }
    /// <summary>"midpoint" | "heun".</summary>
    [JsonPropertyName("solver_type")] public string? SolverType { get; init; }
    [JsonPropertyName("lower_order_final")] public bool? LowerOrderFinal { get; init; }
    [JsonPropertyName("euler_at_final")] public bool? EulerAtFinal { get; init; }
    /// <summary>"zero" | "sigma_min".</summary>
    [JsonPropertyName("final_sigmas_type")] public string? FinalSigmasType { get; init; }
    [JsonPropertyName("lambda_min_clipped")] public double? LambdaMinClipped { get; init; }
    [JsonPropertyName("use_karras_sigmas")] public bool? UseKarrasSigmas { get; init; }
    [JsonPropertyName("use_exponential_sigmas")] public bool? UseExponentialSigmas { get; init; }
    [JsonPropertyName("use_beta_sigmas")] public bool? UseBetaSigmas { get; init; }
    [JsonPropertyName("use_lu_lambdas")] public bool? UseLuLambdas { get; init; }
    [JsonPropertyName("use_flow_sigmas")] public bool? UseFlowSigmas { get; init; }

    private static readonly JsonSerializerOptions JsonOptions = new()
    {
        NumberHandling = JsonNumberHandling.AllowNamedFloatingPointLiterals, // lambda_min_clipped: -Infinity
        ReadCommentHandling = JsonCommentHandling.Skip,
        AllowTrailingCommas = true,
    };

    public static SchedulerConfig Parse(string json, string source = "scheduler_config.json")
    {
        // Python's json writes float('inf') as a bare -Infinity token, which is not JSON; quote it so the
        // named-literal number handling can read it.
        json = BareNonFinite().Replace(json, m => $"{m.Groups[1].Value}\"{m.Groups[2].Value}\"");
        try
        {
            return JsonSerializer.Deserialize<SchedulerConfig>(json, JsonOptions)
                ?? throw new InvalidDataException($"{source}: the file holds null, expected a JSON object");
        }
        catch (JsonException e)
        {
            throw new InvalidDataException($"{source}: invalid scheduler config at {e.Path ?? "$"} (line {e.LineNumber + 1}): {e.Message}", e);
        }
    }

    [GeneratedRegex(@"(:\s*)(-?Infinity|NaN)(?=\s*[,}\]])")]
    private static partial Regex BareNonFinite();

    /// <summary>Reads a scheduler_config.json (or the scheduler/ folder holding one).</summary>
    public static SchedulerConfig Load(string path)
    {
        if (Directory.Exists(path)) path = Path.Combine(path, "scheduler_config.json");
        if (!File.Exists(path)) throw new FileNotFoundException($"scheduler config not found: {path}", path);
        return Parse(File.ReadAllText(path), path);
    }
}
