using CsCheck;

namespace AutogradService.Api.Tests.Properties;

/// <summary>
/// Runs a CsCheck generator for a fixed number of cases from a fixed seed, so every run sends the same requests.
/// <c>AUTOGRAD_PROPERTY_ITERATIONS</c> raises the count (the first cases stay the same); a failure names the case's own
/// seed, and <c>AUTOGRAD_PROPERTY_SEED=&lt;seed&gt;</c> runs that one case alone.
/// </summary>
public static class PropertyRun
{
    public static int Iterations(int fallback) =>
        int.TryParse(Environment.GetEnvironmentVariable("AUTOGRAD_PROPERTY_ITERATIONS"), out int n) && n > 0 ? n : fallback;

    /// <summary>
    /// Checks every case (a failing one does not stop the run), then fails listing each distinct failure once with the
    /// seed that reproduces it.
    /// </summary>
    public static async Task ForEach<T>(Gen<T> gen, ulong seed, int iterations, Func<T, Task> check, Func<T, string> print)
    {
        var only = Environment.GetEnvironmentVariable("AUTOGRAD_PROPERTY_SEED");
        var pcg = string.IsNullOrEmpty(only) ? new PCG(1, seed) : PCG.Parse(only);
        int count = string.IsNullOrEmpty(only) ? iterations : 1;
        var failures = new Dictionary<string, (int Case, string Seed, string Shown, string Message, int Count)>(StringComparer.Ordinal);
        for (int i = 0; i < count; i++)
        {
            ulong state = pcg.State;
            var value = gen.Generate(pcg, null, out _);
            try
            {
                await check(value);
            }
            catch (Exception e)
            {
                // Failures differ by their first two lines (the answer, and what the service threw), less the trace id.
                var key = System.Text.RegularExpressions.Regex.Replace(string.Join("\n", e.Message.Split('\n').Take(2)), "\"trace_id\":\"[^\"]*\"", "");
                if (key.Length > 300) key = key[..300];
                if (failures.TryGetValue(key, out var seen))
                {
                    failures[key] = seen with { Count = seen.Count + 1 };
                    continue;
                }
                var shown = print(value);
                if (shown.Length > 2000) shown = shown[..2000] + "...";
                var message = e.Message.Length > 3000 ? e.Message[..3000] + "..." : e.Message;
                failures[key] = (i, pcg.ToString(state), shown, message, 1);
            }
        }
        if (failures.Count == 0) return;
        throw new Xunit.Sdk.XunitException($"{failures.Values.Sum(f => f.Count)} of {count} cases failed, {failures.Count} distinct:\n" + string.Join("\n\n",
            failures.Select(f => $"[{f.Value.Count}x] case {f.Value.Case}, run alone with AUTOGRAD_PROPERTY_SEED={f.Value.Seed}\n{f.Value.Message}\n{f.Value.Shown}")));
    }
}
