namespace BatchRender.Core.Manifests;

/// <summary>
/// Inputs of a manifest on the local disk (<c>batchrender validate</c> and <c>render</c>): files beside the manifest file.
/// Every path is resolved through symbolic links, component by component, and refused unless its real location is
/// inside the folder's real location.
/// </summary>
public sealed class LocalFolderManifestInputs : IManifestInputs
{
    private const int MaxLinkHops = 40;
    private readonly string _root;

    public LocalFolderManifestInputs(string folder)
    {
        _root = RealPath(Path.GetFullPath(folder));
        Folder = _root;
    }

    /// <summary>The folder (its real path, links resolved).</summary>
    public string Folder { get; }

    /// <summary>Inputs of the manifest at <paramref name="manifestPath"/>: the folder that holds it.</summary>
    public static LocalFolderManifestInputs ForManifestFile(string manifestPath) =>
        new(Path.GetDirectoryName(Path.GetFullPath(manifestPath))!);

    public async Task<InputCheck> CheckAsync(string relativePath, CancellationToken cancellationToken)
    {
        if (!TryResolve(relativePath, out var fullPath, out var refusal)) return InputCheck.Refused(refusal);
        if (Directory.Exists(fullPath)) return InputCheck.Refused("is a folder, not a file");
        if (!File.Exists(fullPath)) return InputCheck.Missing;
        var header = new byte[InputCheck.HeaderLength];
        await using var file = new FileStream(fullPath, FileMode.Open, FileAccess.Read, FileShare.Read, 1, useAsync: true);
        var read = await file.ReadAtLeastAsync(header, header.Length, throwOnEndOfStream: false, cancellationToken).ConfigureAwait(false);
        return InputCheck.Found(header.AsMemory(0, read));
    }

    /// <summary>
    /// The real path of an input, or why it is refused: a path that fails <see cref="ManifestRules.CheckInputPath"/>, or
    /// that leads outside the folder through a symbolic link. The renderer opens inputs through this too.
    /// </summary>
    public bool TryResolve(string relativePath, out string fullPath, out string refusal)
    {
        fullPath = "";
        if (ManifestRules.CheckInputPath(relativePath) is { } problem)
        {
            refusal = problem;
            return false;
        }
        string real;
        try
        {
            real = RealPath(Path.Join(_root, relativePath.Replace('/', Path.DirectorySeparatorChar)));
        }
        catch (IOException e)
        {
            refusal = $"cannot be resolved: {e.Message}";
            return false;
        }
        if (!real.StartsWith(_root.EndsWith(Path.DirectorySeparatorChar) ? _root : _root + Path.DirectorySeparatorChar, StringComparison.Ordinal))
        {
            refusal = "leads outside the manifest's folder (through a symbolic link)";
            return false;
        }
        fullPath = real;
        refusal = "";
        return true;
    }

    /// <summary>The path with every symbolic link along it resolved (what the kernel would open), as far as it exists.</summary>
    private static string RealPath(string fullPath)
    {
        var hops = 0;
        return Resolve(fullPath, ref hops);

        static string Resolve(string path, ref int hops)
        {
            var root = Path.GetPathRoot(path)!;
            var current = root;
            foreach (var segment in path[root.Length..].Split(Path.DirectorySeparatorChar, StringSplitOptions.RemoveEmptyEntries))
            {
                var next = Path.Join(current, segment);
                var target = new FileInfo(next).LinkTarget;
                if (target is null)
                {
                    current = next;
                    continue;
                }
                if (++hops > MaxLinkHops) throw new IOException("too many levels of symbolic links");
                current = Resolve(Path.GetFullPath(target, current), ref hops);
            }
            return current;
        }
    }
}
