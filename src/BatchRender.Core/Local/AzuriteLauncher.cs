using System.Diagnostics;
using System.Net.Sockets;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace BatchRender.Core.Local;

/// <summary>Where the local Azure Storage emulator listens and keeps its data.</summary>
public sealed class AzuriteOptions
{
    public string Host { get; set; } = "127.0.0.1";
    public int BlobPort { get; set; } = 10000;
    public int QueuePort { get; set; } = 10001;
    public int TablePort { get; set; } = 10002;
    /// <summary>Workspace folder; empty = <c>.azurite/</c> under the repository root. Ignored when <see cref="InMemory"/>.</summary>
    public string? Location { get; set; }
    /// <summary>Keep nothing on disk (tests): the data lives as long as the process.</summary>
    public bool InMemory { get; set; }
    /// <summary>Folder holding the package.json that pins Azurite; empty = found by walking up from the app and the working directory.</summary>
    public string? RepositoryRoot { get; set; }
    public TimeSpan StartTimeout { get; set; } = TimeSpan.FromSeconds(60);
    /// <summary>
    /// Stop the emulator when this process ends, even if it is killed without running its disposers (a test host):
    /// on Linux and macOS it runs under a small shell that stops it when this process's end closes its stdin.
    /// </summary>
    public bool ExitWithThisProcess { get; set; } = true;
}

/// <summary>
/// Finds a running Azurite on the configured ports or starts one from the repository's pinned npm dependency
/// (running <c>npm ci</c> first when it is not installed), waits until Blob, Queue and Table answer, and stops it on
/// dispose when it started it. One instance serves many tests and tools: a running emulator is shared, not replaced.
/// </summary>
public sealed class AzuriteLauncher : IAsyncDisposable
{
    // The emulator's published development account (https://learn.microsoft.com/azure/storage/common/storage-use-azurite).
    public const string DevelopmentAccountName = "devstoreaccount1";
    public const string DevelopmentAccountKey =
        "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==";

    private readonly Process? _process;
    private readonly ILogger _logger;

    private AzuriteLauncher(AzuriteOptions options, Process? process, ILogger logger)
    {
        Options = options;
        _process = process;
        _logger = logger;
        ConnectionString = BuildConnectionString(options);
    }

    public AzuriteOptions Options { get; }

    /// <summary>True when this launcher started the emulator (and so stops it on dispose).</summary>
    public bool StartedHere => _process is not null;

    /// <summary>Connection string for the Blob, Queue and Table endpoints.</summary>
    public string ConnectionString { get; }

    public static string BuildConnectionString(AzuriteOptions options) =>
        $"DefaultEndpointsProtocol=http;AccountName={DevelopmentAccountName};AccountKey={DevelopmentAccountKey};" +
        $"BlobEndpoint=http://{options.Host}:{options.BlobPort}/{DevelopmentAccountName};" +
        $"QueueEndpoint=http://{options.Host}:{options.QueuePort}/{DevelopmentAccountName};" +
        $"TableEndpoint=http://{options.Host}:{options.TablePort}/{DevelopmentAccountName};";

    /// <summary>Returns a launcher over a running emulator, or starts one and waits until it answers.</summary>
    public static async Task<AzuriteLauncher> StartAsync(
        AzuriteOptions? options = null, ILogger? logger = null, CancellationToken cancellationToken = default)
    {
        options ??= new AzuriteOptions();
        logger ??= NullLogger.Instance;
        int[] ports = [options.BlobPort, options.QueuePort, options.TablePort];

        var listening = await CountListeningAsync(options.Host, ports, cancellationToken);
        if (listening == ports.Length)
        {
            logger.LogInformation("Using the Azurite already listening on {Host}:{Ports}", options.Host, string.Join(",", ports));
            return new AzuriteLauncher(options, null, logger);
        }
        if (listening > 0)
            throw new InvalidOperationException(
                $"Only some of the ports {string.Join(", ", ports)} on {options.Host} are in use: another program holds them, " +
                "so Azurite cannot start there. Stop it or configure other ports.");

        var root = options.RepositoryRoot ?? FindRepositoryRoot()
            ?? throw new InvalidOperationException(
                "Azurite is not running and no package.json pinning it was found above " +
                $"'{AppContext.BaseDirectory}' or '{Environment.CurrentDirectory}'. Start Azurite yourself or set the repository root.");
        var azurite = AzuriteExecutable(root);
        if (!File.Exists(azurite))
            await InstallAsync(root, logger, cancellationToken);

        var arguments = new List<string>
        {
            "--silent", "--disableTelemetry", "--skipApiVersionCheck",
            "--blobHost", options.Host, "--queueHost", options.Host, "--tableHost", options.Host,
            "--blobPort", options.BlobPort.ToString(), "--queuePort", options.QueuePort.ToString(),
            "--tablePort", options.TablePort.ToString(),
        };
        if (options.InMemory)
            arguments.Add("--inMemoryPersistence");
        else
        {
            var location = options.Location is { Length: > 0 } l ? l : Path.Combine(root, ".azurite");
            Directory.CreateDirectory(location);
            arguments.AddRange(["--location", location]);
        }

        var watched = options.ExitWithThisProcess && !OperatingSystem.IsWindows();
        var start = new ProcessStartInfo(watched ? "/bin/sh" : azurite)
        {
            WorkingDirectory = root,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            RedirectStandardInput = watched,
            UseShellExecute = false,
        };
        if (watched)
        {
            // sh runs azurite and, beside it, waits for EOF on stdin: the pipe closes when this process ends, however it
            // ends, and then azurite is stopped. The shell itself ends with azurite (so a failed start is seen at once). stdin is
            // kept on fd 3: a background job's own stdin is /dev/null.
            foreach (var a in new[] { "-c", "exec 3<&0; \"$0\" \"$@\" & child=$!; (cat <&3 >/dev/null; kill $child 2>/dev/null) & wait $child", azurite })
                start.ArgumentList.Add(a);
        }
        foreach (var argument in arguments) start.ArgumentList.Add(argument);
        logger.LogInformation("Starting Azurite: {Command} {Arguments}", azurite, string.Join(" ", arguments));
        var process = Process.Start(start) ?? throw new InvalidOperationException($"Could not start '{azurite}'.");
        var output = new System.Text.StringBuilder();
        process.OutputDataReceived += (_, e) => { if (e.Data is not null) lock (output) output.AppendLine(e.Data); };
        process.ErrorDataReceived += (_, e) => { if (e.Data is not null) lock (output) output.AppendLine(e.Data); };
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();

        var launcher = new AzuriteLauncher(options, process, logger);
        var deadline = Stopwatch.StartNew();
        while (deadline.Elapsed < options.StartTimeout)
        {
            if (await CountListeningAsync(options.Host, ports, cancellationToken) == ports.Length)
                return launcher;
            if (process.HasExited)
            {
                // Another process (a parallel test run) may have won the race for the ports: use its emulator.
                await Task.Delay(500, cancellationToken);
                if (await CountListeningAsync(options.Host, ports, cancellationToken) == ports.Length)
                    return new AzuriteLauncher(options, null, logger);
                string log;
                lock (output) log = output.ToString();
                throw new InvalidOperationException($"Azurite exited with code {process.ExitCode} before it was ready:\n{log}");
            }
            await Task.Delay(200, cancellationToken);
        }
        await launcher.DisposeAsync();
        throw new TimeoutException($"Azurite did not answer on {options.Host}:{string.Join(",", ports)} within {options.StartTimeout}.");
    }

    /// <summary>True when something answers on all three of the configured ports.</summary>
    public static async Task<bool> IsRunningAsync(AzuriteOptions options, CancellationToken cancellationToken = default) =>
        await CountListeningAsync(options.Host, [options.BlobPort, options.QueuePort, options.TablePort], cancellationToken) == 3;

    /// <summary>The nearest folder above the app or the working directory whose package.json names azurite.</summary>
    public static string? FindRepositoryRoot()
    {
        foreach (var start in new[] { AppContext.BaseDirectory, Environment.CurrentDirectory })
        {
            for (var dir = new DirectoryInfo(start); dir is not null; dir = dir.Parent)
            {
                var package = Path.Combine(dir.FullName, "package.json");
                if (File.Exists(package) && File.ReadAllText(package).Contains("\"azurite\"", StringComparison.Ordinal))
                    return dir.FullName;
            }
        }
        return null;
    }

    private static string AzuriteExecutable(string root) =>
        Path.Combine(root, "node_modules", ".bin", OperatingSystem.IsWindows() ? "azurite.cmd" : "azurite");

    private static async Task InstallAsync(string root, ILogger logger, CancellationToken cancellationToken)
    {
        // npm ci installs exactly the lock file; without one, npm install resolves the pinned version.
        var command = File.Exists(Path.Combine(root, "package-lock.json")) ? "ci" : "install";
        logger.LogInformation("Installing Azurite: npm {Command} in {Root}", command, root);
        var start = new ProcessStartInfo(OperatingSystem.IsWindows() ? "npm.cmd" : "npm")
        {
            WorkingDirectory = root,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        foreach (var a in new[] { command, "--no-audit", "--no-fund" }) start.ArgumentList.Add(a);
        using var npm = Process.Start(start) ?? throw new InvalidOperationException("Could not start npm (is Node.js installed?).");
        var stdout = npm.StandardOutput.ReadToEndAsync(cancellationToken);
        var stderr = npm.StandardError.ReadToEndAsync(cancellationToken);
        await npm.WaitForExitAsync(cancellationToken);
        if (npm.ExitCode != 0 || !File.Exists(AzuriteExecutable(root)))
            throw new InvalidOperationException(
                $"npm {command} in '{root}' failed with exit code {npm.ExitCode}:\n{await stdout}\n{await stderr}");
    }

    private static async Task<int> CountListeningAsync(string host, int[] ports, CancellationToken cancellationToken)
    {
        var count = 0;
        foreach (var port in ports)
        {
            using var client = new TcpClient();
            using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
            timeout.CancelAfter(TimeSpan.FromSeconds(1));
            try
            {
                await client.ConnectAsync(host, port, timeout.Token);
                count++;
            }
            catch (Exception e) when (e is SocketException or OperationCanceledException && !cancellationToken.IsCancellationRequested)
            {
            }
        }
        return count;
    }

    /// <summary>Stops the emulator if this launcher started it; a shared one is left running.</summary>
    public async ValueTask DisposeAsync()
    {
        if (_process is null) return;
        try
        {
            if (!_process.HasExited)
            {
                _logger.LogInformation("Stopping Azurite (pid {Pid})", _process.Id);
                _process.Kill(entireProcessTree: true);
                await _process.WaitForExitAsync().WaitAsync(TimeSpan.FromSeconds(10));
            }
        }
        catch (Exception e) when (e is InvalidOperationException or TimeoutException)
        {
        }
        _process.Dispose();
    }
}
