namespace BatchRender.Infra.Tests;

/// <summary>Paths in the repository under test (found from the test binary upwards).</summary>
internal static class Repo
{
    public static string Root { get; } = FindRoot();

    public static string Path(params string[] parts) => System.IO.Path.Combine([Root, .. parts]);

    public static string Read(params string[] parts) => File.ReadAllText(Path(parts));

    private static string FindRoot()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
            if (File.Exists(System.IO.Path.Combine(dir.FullName, "BatchRender.sln")))
                return dir.FullName;
        throw new InvalidOperationException($"BatchRender.sln not found above {AppContext.BaseDirectory}");
    }
}
