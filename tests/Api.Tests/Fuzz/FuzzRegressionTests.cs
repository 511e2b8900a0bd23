using AutogradService.Api.Tests.Infrastructure;
using AutogradService.Fuzz.Harness;

namespace AutogradService.Api.Tests.Fuzz;

/// <summary>
/// Replays, through the fuzz harness's own targets and rule, every input kept in <c>tests/Fuzz/regressions/&lt;target&gt;/</c>
/// (hostile inputs of each class in docs/RELIABILITY.md, and crashes the fuzzer found once fixed) and every seed of
/// <c>tests/Fuzz/corpus/&lt;target&gt;/</c>: each must give a result or a documented error code, and give back every pooled
/// byte. A known issue does not pass here. A new finding's reproducer waits in <c>tests/Fuzz/pending/</c> (not replayed)
/// while its fix is made elsewhere, and moves into regressions/ with the fix.
/// </summary>
[Collection(SerialCollection.Name)] // the harness checks the process-wide pool around each input
public sealed class FuzzRegressionTests
{
    public static TheoryData<string, string> Regressions() => Inputs("regressions");

    public static TheoryData<string, string> Seeds() => Inputs("corpus");

    [Theory]
    [MemberData(nameof(Regressions))]
    public void Regression_gives_a_result_or_a_documented_error(string target, string file) => Replay(target, "regressions", file);

    [Theory]
    [MemberData(nameof(Seeds))]
    public void Seed_gives_a_result_or_a_documented_error(string target, string file) => Replay(target, "corpus", file);

    [Fact]
    public void Every_target_has_seeds_and_regressions()
    {
        foreach (var target in FuzzTargets.All)
        {
            Assert.NotEmpty(Files("corpus", target.Name));
            Assert.NotEmpty(Files("regressions", target.Name));
        }
    }

    private static void Replay(string target, string folder, string file)
    {
        var outcome = FuzzTargets.Get(target).Execute(File.ReadAllBytes(Path.Combine(FuzzFiles.Folder, folder, target, file)));
        Assert.True(outcome.Kind is OutcomeKind.Result or OutcomeKind.Documented,
            $"{folder}/{target}/{file}: {outcome}\nreproduce: dotnet run --project tests/Fuzz -c Release -- replay {target} tests/Fuzz/{folder}/{target}/{file}");
    }

    private static TheoryData<string, string> Inputs(string folder)
    {
        var data = new TheoryData<string, string>();
        foreach (var target in FuzzTargets.All)
            foreach (var file in Files(folder, target.Name))
                data.Add(target.Name, file);
        return data;
    }

    private static IEnumerable<string> Files(string folder, string target)
    {
        var dir = Path.Combine(FuzzFiles.Folder, folder, target);
        return Directory.Exists(dir) ? Directory.EnumerateFiles(dir).Select(Path.GetFileName).Order()! : [];
    }
}
