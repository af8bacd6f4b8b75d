using System.ComponentModel.DataAnnotations;
using System.Reflection;
using BatchRender.Core.Configuration;
using Microsoft.Extensions.Configuration;

namespace BatchRender.Infra.Tests;

/// <summary>
/// The settings the code reads, from its own option classes and section constants: an environment variable
/// name (Section__Key, as appsettings, Bicep app settings and the Kubernetes ConfigMap spell it) either names
/// a real option property or it is a typo that the code would silently ignore.
/// </summary>
internal static class CodeSettings
{
    /// <summary>Section -> the option class bound to it.</summary>
    public static readonly IReadOnlyDictionary<string, Type> OptionSections = new Dictionary<string, Type>
    {
        [ConfigSections.Transport] = typeof(TransportOptions),
        [ConfigSections.Blobs] = typeof(BlobOptions),
        [ConfigSections.State] = typeof(StateOptions),
        [ConfigSections.Limits] = typeof(LimitsOptions),
        [ConfigSections.Defaults] = typeof(RenderDefaultsOptions),
        [ConfigSections.Worker] = typeof(WorkerOptions),
        [ConfigSections.Telemetry] = typeof(TelemetryOptions),
    };

    /// <summary>Identity-based connections (the Azure SDK's AddAzureClients / Functions format): no keys.</summary>
    public static readonly IReadOnlyDictionary<string, string[]> ConnectionSections = new Dictionary<string, string[]>
    {
        [ConfigSections.Storage] = ["blobServiceUri", "queueServiceUri", "tableServiceUri"],
        [ConfigSections.ServiceBus] = ["fullyQualifiedNamespace"],
    };

    /// <summary>Every section constant the code declares.</summary>
    public static IReadOnlyList<string> DeclaredSections { get; } = typeof(ConfigSections)
        .GetFields(BindingFlags.Public | BindingFlags.Static)
        .Where(f => f.IsLiteral && f.FieldType == typeof(string))
        .Select(f => (string)f.GetRawConstantValue()!)
        .ToList();

    /// <summary>Null when the name maps to a setting the code reads; otherwise why not.</summary>
    public static string? Problem(string name)
    {
        var parts = name.Split("__");
        var section = parts[0];
        if (OptionSections.TryGetValue(section, out var type))
        {
            if (parts.Length < 2) return $"{name}: a section, not a setting";
            var property = type.GetProperty(parts[1], BindingFlags.Public | BindingFlags.Instance);
            if (property is null || property.SetMethod is null)
                return $"{name}: {type.Name} has no settable property '{parts[1]}' (properties: {string.Join(", ", type.GetProperties().Select(p => p.Name))})";
            var isArray = property.PropertyType.IsArray;
            if (isArray && (parts.Length != 3 || !int.TryParse(parts[2], out _)))
                return $"{name}: {type.Name}.{property.Name} is an array: expected {section}__{property.Name}__<index>";
            if (!isArray && parts.Length != 2)
                return $"{name}: {type.Name}.{property.Name} has no sub-keys";
            return null;
        }
        if (ConnectionSections.TryGetValue(section, out var keys))
            return parts.Length == 2 && keys.Contains(parts[1], StringComparer.Ordinal)
                ? null
                : $"{name}: the {section} connection takes {string.Join(", ", keys.Select(k => $"{section}__{k}"))}";
        if (section == ConfigSections.Models)
            return parts.Length == 3 && parts[1].Length > 0 && typeof(ModelEntryOptions).GetProperty(parts[2]) is not null
                ? null
                : $"{name}: expected {ConfigSections.Models}__<model>__{nameof(ModelEntryOptions.Path)}";
        return $"{name}: '{section}' is not a configuration section of the code (ConfigSections: {string.Join(", ", DeclaredSections)})";
    }

    /// <summary>Binds the settings the way the hosts do (strict: unknown keys and bad values fail) and runs the
    /// option classes' own validation. Returns every problem.</summary>
    public static IReadOnlyList<string> BindAndValidate(IReadOnlyDictionary<string, string> environment)
    {
        var configuration = new ConfigurationBuilder()
            .AddInMemoryCollection(environment.Select(p => new KeyValuePair<string, string?>(p.Key.Replace("__", ":"), p.Value)))
            .Build();
        var problems = new List<string>();
        foreach (var (section, type) in OptionSections)
        {
            var options = Activator.CreateInstance(type)!;
            try
            {
                configuration.GetSection(section).Bind(options, o => o.ErrorOnUnknownConfiguration = true);
            }
            catch (InvalidOperationException e)
            {
                problems.Add($"{section}: {e.Message}");
                continue;
            }
            problems.AddRange(Validate(section, options));
        }
        foreach (var model in configuration.GetSection(ConfigSections.Models).GetChildren())
        {
            var entry = new ModelEntryOptions();
            model.Bind(entry, o => o.ErrorOnUnknownConfiguration = true);
            problems.AddRange(Validate($"{ConfigSections.Models}:{model.Key}", entry));
        }
        return problems;
    }

    public static T Bind<T>(IReadOnlyDictionary<string, string> environment, string section) where T : new()
    {
        var configuration = new ConfigurationBuilder()
            .AddInMemoryCollection(environment.Select(p => new KeyValuePair<string, string?>(p.Key.Replace("__", ":"), p.Value)))
            .Build();
        var options = new T();
        configuration.GetSection(section).Bind(options);
        return options;
    }

    private static IEnumerable<string> Validate(string section, object options)
    {
        var results = new List<ValidationResult>();
        Validator.TryValidateObject(options, new ValidationContext(options), results, validateAllProperties: true);
        return results.Select(r => $"{section}: {r.ErrorMessage}");
    }

    /// <summary>Settings the worker cannot run without in Azure (beyond the option defaults).</summary>
    public static readonly string[] RequiredForWorker =
    [
        "Storage__blobServiceUri", "Storage__queueServiceUri", "Storage__tableServiceUri",
        "ServiceBus__fullyQualifiedNamespace", "Transport__Kind", "Transport__QueueName",
        "Transport__MaxDeliveryCount", "Transport__LockDuration", "Worker__HealthPort", "Worker__DrainTimeout",
        "Worker__BatchSize", "Models__demo__Path",
    ];

    /// <summary>Settings the ingest Functions app cannot run without in Azure.</summary>
    public static readonly string[] RequiredForFunctions =
    [
        "Storage__blobServiceUri", "Storage__queueServiceUri", "Storage__tableServiceUri",
        "ServiceBus__fullyQualifiedNamespace", "Transport__Kind", "Transport__QueueName", "Models__demo__Path",
    ];
}
