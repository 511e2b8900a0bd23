namespace AutogradService.Api.Tests.Fuzz;

/// <summary>tests/Fuzz of the checkout the tests were built from: seed corpora and regressions.</summary>
public static class FuzzFiles
{
    public static string Folder { get; } = Find();

    /// <summary>The files of <c>tests/Fuzz/&lt;folder&gt;/&lt;target&gt;</c>, by name.</summary>
    public static IEnumerable<string> Paths(string folder, string target)
    {
        var dir = Path.Combine(Folder, folder, target);
        return Directory.Exists(dir) ? Directory.EnumerateFiles(dir).Order() : [];
    }

    private static string Find()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            var candidate = Path.Combine(dir.FullName, "tests", "Fuzz");
            if (Directory.Exists(Path.Combine(candidate, "corpus"))) return candidate;
        }
        throw new DirectoryNotFoundException($"tests/Fuzz/corpus above {AppContext.BaseDirectory}");
    }
}
