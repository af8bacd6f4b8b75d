using System.CommandLine;
using BatchRender.Core.Configuration;
using BatchRender.Core.Manifests;
using Microsoft.Extensions.Configuration;

namespace BatchRender.Cli;

/// <summary>
/// Standard .NET configuration for every command: appsettings.json beside the binary (local defaults: Azurite, the
/// demo model), then an optional <c>--config</c> file, then environment variables (Section__Key), so the same commands
/// run against Azure when the environment points there.
/// </summary>
public static class CliConfiguration
{
    public static readonly Option<FileInfo?> ConfigOption = new("--config")
    {
        Description = "An extra appsettings-style JSON file (overrides the defaults; environment variables override it)",
        Recursive = true,
    };

    public static IConfigurationRoot Build(ParseResult parse)
    {
        var builder = new ConfigurationBuilder()
            .AddJsonFile(Path.Combine(AppContext.BaseDirectory, "appsettings.json"), optional: true);
        if (parse.GetValue(ConfigOption) is { } file)
        {
            if (!file.Exists) throw new CliInputException($"{file.FullName}: configuration file not found");
            builder.AddJsonFile(file.FullName, optional: false);
        }
        return builder.AddEnvironmentVariables().Build();
    }

    /// <summary>The manifest rules ingest uses, from the same configuration sections (limits validated).</summary>
    public static ManifestRules ManifestRules(IConfiguration configuration) => Core.Manifests.ManifestRules.FromConfiguration(configuration);

    public static IReadOnlySet<string> ModelNames(IConfiguration configuration) => Core.Manifests.ManifestRules.ModelNames(configuration);

    /// <summary>The guidance scale a model renders with when nothing names one, as ingest resolves it
    /// (<see cref="Core.Manifests.ManifestRules.DefaultGuidanceScale"/>): a model given as a directory counts as the
    /// configured model at that path; another directory gets <c>Defaults:GuidanceScale</c>.</summary>
    public static double DefaultGuidanceScale(IConfiguration configuration, string model, string directory)
    {
        var rules = ManifestRules(configuration);
        static string Normalised(string path) => Path.TrimEndingDirectorySeparator(Path.GetFullPath(path));
        var configured = rules.Models.Contains(model) ? model : rules.Models.FirstOrDefault(name =>
            !string.IsNullOrWhiteSpace(configuration[$"{ConfigSections.Models}:{name}:Path"]) &&
            Normalised(ModelDirectory(configuration, name)) == Normalised(directory));
        // A directory that is no configured model's has no guidance of its own: the rules give it the configured default.
        return rules.DefaultGuidanceScale(configured ?? "");
    }

    /// <summary>
    /// A model directory from <c>Models:{name}:Path</c>: absolute, or relative to the working directory, or to the
    /// binary's folder (where container images bake models/demo).
    /// </summary>
    public static string ModelDirectory(IConfiguration configuration, string model)
    {
        var path = configuration[$"{ConfigSections.Models}:{model}:Path"];
        if (string.IsNullOrWhiteSpace(path))
            throw new CliInputException($"model '{model}' is not configured (Models:{model}:Path); configured: {string.Join(", ", ModelNames(configuration))}");
        if (Path.IsPathRooted(path)) return path;
        foreach (var root in new[] { Directory.GetCurrentDirectory(), AppContext.BaseDirectory })
        {
            var candidate = Path.GetFullPath(Path.Combine(root, path));
            if (Directory.Exists(candidate)) return candidate;
        }
        return Path.GetFullPath(path);
    }
}

/// <summary>Bad input from the user (exit code 2), with a message that names the problem.</summary>
public sealed class CliInputException(string message) : Exception(message);
