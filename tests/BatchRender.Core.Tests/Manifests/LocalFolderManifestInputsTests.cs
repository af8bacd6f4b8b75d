using BatchRender.Core.Manifests;

namespace BatchRender.Core.Tests.Manifests;

/// <summary>The local inputs of <c>validate</c>/<c>render</c>, on real files and real symbolic links.</summary>
public sealed class LocalFolderManifestInputsTests : IDisposable
{
    private readonly ManifestTestKit _kit = new();
    private readonly string _outside = Directory.CreateTempSubdirectory("batchrender-outside-").FullName;

    public LocalFolderManifestInputsTests()
    {
        File.Copy(Path.Combine(_kit.Folder, "inputs", "scene.png"), Path.Combine(_outside, "secret.png"));
    }

    [Fact]
    public async Task A_file_in_the_folder_is_found_with_its_first_bytes()
    {
        var check = await _kit.Inputs.CheckAsync("inputs/scene.png", default);
        Assert.True(check.Exists);
        Assert.True(InputImageFormats.IsPng(check.Header.Span));
        Assert.Equal(InputCheck.HeaderLength, check.Header.Length);
        Assert.True(InputImageFormats.IsJpeg((await _kit.Inputs.CheckAsync("inputs/photo.jpg", default)).Header.Span));
        Assert.False((await _kit.Inputs.CheckAsync("inputs/none.png", default)).Exists);
    }

    [Fact]
    public async Task A_symbolic_link_out_of_the_folder_is_refused()
    {
        File.CreateSymbolicLink(Path.Combine(_kit.Folder, "inputs", "link.png"), Path.Combine(_outside, "secret.png"));
        Directory.CreateSymbolicLink(Path.Combine(_kit.Folder, "escape"), _outside);

        foreach (var path in new[] { "inputs/link.png", "escape/secret.png" })
        {
            var check = await _kit.Inputs.CheckAsync(path, default);
            Assert.False(check.Exists);
            Assert.Equal("leads outside the manifest's folder (through a symbolic link)", check.Refusal);
        }

        var result = await _kit.ValidateAsync(ManifestTestKit.Manifest(
            """{ "id": "a", "prompt": "p", "inpaint": { "image": "escape/secret.png", "mask": "inputs/scene-mask.png" } }"""));
        var problem = Assert.Single(result.Problems);
        Assert.Equal(("items[0].inpaint.image", "\"escape/secret.png\" leads outside the manifest's folder (through a symbolic link)"), (problem.Path, problem.Message));
    }

    [Fact]
    public async Task A_symbolic_link_that_stays_inside_is_followed()
    {
        File.CreateSymbolicLink(Path.Combine(_kit.Folder, "alias.png"), Path.Combine("inputs", "scene.png"));
        var check = await _kit.Inputs.CheckAsync("alias.png", default);
        Assert.True(check.Exists);
        Assert.Null(check.Refusal);
    }

    [Fact]
    public async Task A_folder_reached_through_a_link_is_the_real_folder()
    {
        var link = Path.Combine(_outside, "manifest-link");
        Directory.CreateSymbolicLink(link, _kit.Folder);
        var inputs = new LocalFolderManifestInputs(link);
        Assert.True((await inputs.CheckAsync("inputs/scene.png", default)).Exists);
        Assert.False(inputs.TryResolve("../secret.png", out _, out var refusal));
        Assert.Contains("'..'", refusal);
    }

    public void Dispose()
    {
        _kit.Dispose();
        Directory.Delete(_outside, recursive: true);
    }
}
