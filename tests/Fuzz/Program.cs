using System.Runtime.ExceptionServices;
using AutogradService.Fuzz.Harness;
using AutogradService.Fuzz.Seeds;

namespace AutogradService.Fuzz;

/// <summary>
/// The fuzzing harness (docs/RELIABILITY.md, "Fuzzing"). run.sh drives it; by hand:
/// <code>
///   fuzz &lt;target&gt;                     under afl-fuzz: SharpFuzz's out-of-process fork server runs each input
///   replay &lt;target|all&gt; &lt;path&gt;...     runs inputs in-process and prints each outcome; exit 1 if any crashed
///                                     (with "all", each path holds one folder per target, as regressions/ does)
///   seed &lt;folder&gt;                     writes the seed corpora and dictionaries (tests/Fuzz)
///   list                              the targets
/// </code>
/// A named class rather than top-level statements: the Api tests reference this assembly and the Api's own Program.
/// </summary>
public static class FuzzProgram
{
    public static int Main(string[] args) => args switch
    {
        ["fuzz", var name] => Fuzz(FuzzTargets.Get(name)),
        ["replay", "all", .. var roots] when roots.Length > 0 => Replay(FuzzTargets.All.SelectMany(t => roots.Select(r => (t, Path.Combine(r, t.Name))))),
        ["replay", var name, .. var paths] when paths.Length > 0 => Replay(paths.Select(p => (FuzzTargets.Get(name), p))),
        ["seed", var folder] => SeedCorpus.Write(folder),
        ["list"] => List(),
        _ => Usage(),
    };

    private static int Fuzz(FuzzTarget target)
    {
        SharpFuzz.Fuzzer.OutOfProcess.Run(stream =>
        {
            using var copy = new MemoryStream();
            stream.CopyTo(copy);
            var outcome = target.Execute(copy.ToArray());
            if (outcome.Kind != OutcomeKind.Crash) return;
            // The original exception, stack and all, is what afl-fuzz records as the crash.
            if (outcome.Exception is { } e) ExceptionDispatchInfo.Capture(e).Throw();
            throw new InvalidOperationException(outcome.Summary);
        });
        return 0;
    }

    private static int Replay(IEnumerable<(FuzzTarget Target, string Path)> work)
    {
        var counts = new SortedDictionary<string, int>(StringComparer.Ordinal);
        foreach (var (target, path) in work)
        {
            IEnumerable<string> files = Directory.Exists(path)
                ? Directory.EnumerateFiles(path, "*", SearchOption.AllDirectories).Where(f => !Path.GetFileName(f).StartsWith("README", StringComparison.Ordinal)).Order()
                : File.Exists(path) ? [path] : [];
            foreach (var file in files)
            {
                var outcome = target.Execute(File.ReadAllBytes(file));
                var key = $"{target.Name} {outcome.Kind.ToString().ToLowerInvariant()}";
                counts[key] = counts.GetValueOrDefault(key) + 1;
                Console.WriteLine($"{target.Name} {file}: {outcome}");
            }
        }
        foreach (var (key, n) in counts) Console.WriteLine($"  {key}: {n}");
        return counts.Keys.Any(k => k.EndsWith(" crash", StringComparison.Ordinal)) ? 1 : 0;
    }

    private static int List()
    {
        foreach (var t in FuzzTargets.All) Console.WriteLine($"{t.Name,-16} {t.Decoder}");
        return 0;
    }

    private static int Usage()
    {
        Console.Error.WriteLine("usage: fuzz <target> | replay <target|all> <path>... | seed <folder> | list");
        return 2;
    }
}
