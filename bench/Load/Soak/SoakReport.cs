using System.Globalization;
using System.Text.Json;

namespace AutogradService.Load.Soak;

/// <summary>One assertion of the verdict.</summary>
public sealed record Check(string Name, bool Passed, string Detail);

/// <summary>Latency percentiles of a group of case runs, in milliseconds.</summary>
public sealed record Latency(long Runs, double P50, double P99, double Max)
{
    public static Latency Of(IEnumerable<float> values)
    {
        var sorted = values.Order().ToArray();
        if (sorted.Length == 0) return new Latency(0, 0, 0, 0);
        double At(double q) => sorted[Math.Clamp((int)Math.Ceiling(q * sorted.Length) - 1, 0, sorted.Length - 1)];
        return new Latency(sorted.Length, Math.Round(At(0.50), 2), Math.Round(At(0.99), 2), Math.Round(sorted[^1], 2));
    }
}

public sealed record CaseStats(string Case, string Kind, string Transport, long Runs, long Passed, long WrongAnswers, long UnexpectedCodes, long Shed,
    Latency Latency, IReadOnlyDictionary<string, long> Codes);

/// <summary>
/// The soak's figures and verdict: throughput and latency after warm-up, codes by kind and transport, per-case counts,
/// the server's memory over time, and the checks (no wrong answer, no unexpected code, flat RSS, pool and sessions
/// back to idle, server healthy, every case exercised).
/// </summary>
public sealed class SoakReport
{
    public required object Config { get; init; }
    public required long Requests { get; init; }
    public required long CaseRuns { get; init; }
    public required double RequestsPerSecond { get; init; }
    public required double CaseRunsPerSecond { get; init; }
    public required Latency Overall { get; init; }
    public required Dictionary<string, Latency> ByKind { get; init; }
    public required Dictionary<string, Dictionary<string, Dictionary<string, long>>> CodesByKind { get; init; }
    public required List<CaseStats> Cases { get; init; }
    public required List<Failure> Failures { get; init; }
    public required object Memory { get; init; }
    public required List<ServerSample> Series { get; init; }
    public required List<Check> Checks { get; init; }
    public bool Passed => Checks.All(c => c.Passed);
    public string Verdict => Passed ? "PASS" : "FAIL";

    public static SoakReport Build(SoakOptions o, IReadOnlyList<Case> cases, List<RunRecord> records, List<Failure> failures,
        List<ServerSample> series, ServerSample idle, ServerSample end, bool healthy, TimeSpan elapsed)
    {
        double warm = o.Warmup.TotalSeconds;
        var measured = records.Where(r => r.Seconds >= warm).ToList();
        double window = Math.Max(1e-3, elapsed.TotalSeconds - warm);
        var perCase = cases.Select((c, i) =>
        {
            var mine = records.Where(r => r.Case == i).ToList();
            return new CaseStats(c.Name, Case.KindName(c.Kind), c.Transport, mine.Count, mine.Count(r => r.Verdict == Soak.Verdict.Passed),
                mine.Count(r => r.Verdict == Soak.Verdict.WrongAnswer), mine.Count(r => r.Verdict == Soak.Verdict.UnexpectedCode),
                mine.Count(r => r.Verdict == Soak.Verdict.Shed), Latency.Of(mine.Where(r => r.Seconds >= warm).Select(r => r.LatencyMs)),
                mine.GroupBy(r => r.Code).OrderByDescending(g => g.Count()).ToDictionary(g => g.Key, g => (long)g.Count()));
        }).ToList();

        double baselineAt = o.RssBaselineAt.TotalSeconds;
        var baseline = series.FirstOrDefault(s => s.Seconds >= baselineAt) ?? series.LastOrDefault();
        double? rssWarm = baseline?.RssMib, rssEnd = end.RssMib;
        double? rssLimit = rssWarm is { } w ? w * (1 + o.RssMargin) + o.RssSlackMiB : null;
        long wrong = perCase.Sum(c => c.WrongAnswers), unexpected = perCase.Sum(c => c.UnexpectedCodes);
        var unexercised = perCase.Where(c => c.Runs == 0).Select(c => c.Case).ToList();
        var checks = new List<Check>
        {
            new("no wrong answers", wrong == 0, $"{wrong} of {perCase.Where(c => c.Kind == "valid").Sum(c => c.Runs)} valid runs"),
            new("no unexpected codes", unexpected == 0, $"{unexpected} of {records.Count} runs"),
            rssWarm is null || rssEnd is null
                ? new("flat RSS", o.ServerPid is null, o.ServerPid is null ? "not measured (no --pid)" : "the server's RSS could not be read")
                : new("flat RSS", rssEnd <= rssLimit,
                    $"end {rssEnd:0.0} MiB vs {rssWarm:0.0} MiB at {baseline!.Seconds:0} s (limit {rssLimit:0.0} = +{o.RssMargin:P0} + {o.RssSlackMiB:0} MiB)"),
            new("pooled bytes back to idle", end.PooledOutstanding == idle.PooledOutstanding,
                $"outstanding {end.PooledOutstanding?.ToString(CultureInfo.InvariantCulture) ?? "n/a"} B at the end, {idle.PooledOutstanding?.ToString(CultureInfo.InvariantCulture) ?? "n/a"} B idle before"),
            new("sessions closed", end.OpenSessions == idle.OpenSessions, $"{end.OpenSessions} open at the end, {idle.OpenSessions} before"),
            new("server healthy", healthy, healthy ? "alive, /healthz and /readyz 200 after the run" : "the server died or is not healthy"),
            new("every case ran", unexercised.Count == 0, unexercised.Count == 0 ? $"{cases.Count} cases" : "never picked: " + string.Join(", ", unexercised)),
        };

        return new SoakReport
        {
            Config = new
            {
                clients = o.Clients, duration_s = o.Duration.TotalSeconds, warmup_s = warm, rest = o.Rest.ToString(), grpc = o.Grpc.ToString(),
                rss_baseline_s = baselineAt, seed = o.Seed, cases = cases.Count, excluded = o.Exclude, only = o.Only, machine_cores = Environment.ProcessorCount,
            },
            Requests = records.Sum(r => (long)r.Requests),
            CaseRuns = records.Count,
            RequestsPerSecond = Math.Round(measured.Sum(r => (long)r.Requests) / window, 1),
            CaseRunsPerSecond = Math.Round(measured.Count / window, 1),
            Overall = Latency.Of(measured.Select(r => r.LatencyMs)),
            ByKind = measured.GroupBy(r => Case.KindName(cases[r.Case].Kind)).ToDictionary(g => g.Key, g => Latency.Of(g.Select(r => r.LatencyMs))),
            CodesByKind = records.GroupBy(r => Case.KindName(cases[r.Case].Kind)).ToDictionary(g => g.Key,
                g => g.GroupBy(r => cases[r.Case].Transport).ToDictionary(t => t.Key,
                    t => t.GroupBy(r => r.Code).OrderByDescending(c => c.Count()).ToDictionary(c => c.Key, c => (long)c.Count()))),
            Cases = perCase,
            Failures = failures,
            Memory = new
            {
                rss_idle_mib = Round(idle.RssMib), rss_baseline_at_s = Round(baseline?.Seconds), rss_baseline_mib = Round(rssWarm), rss_max_mib = Round(series.Max(s => s.RssMib)),
                rss_end_mib = Round(rssEnd), rss_limit_mib = Round(rssLimit), pooled_outstanding_idle = idle.PooledOutstanding,
                pooled_outstanding_max = series.Max(s => s.PooledOutstanding), pooled_outstanding_end = end.PooledOutstanding,
                pooled_retained_end = end.PooledRetained, open_sessions_end = end.OpenSessions,
            },
            Series = series,
            Checks = checks,
        };
    }

    private static double? Round(double? v) => v is { } x ? Math.Round(x, 1) : null;

    public void Print(TextWriter w)
    {
        var inv = CultureInfo.InvariantCulture;
        w.WriteLine();
        w.WriteLine(string.Create(inv, $"{CaseRuns} case runs, {Requests} requests; after warm-up {RequestsPerSecond:0} req/s ({CaseRunsPerSecond:0} case runs/s)"));
        w.WriteLine(string.Create(inv, $"latency per case run (ms)   {"runs",8} {"p50",8} {"p99",8} {"max",8}"));
        foreach (var (name, l) in new[] { ("all", Overall) }.Concat(ByKind.OrderBy(k => k.Key).Select(k => (k.Key, k.Value))))
            w.WriteLine(string.Create(inv, $"  {name,-26}{l.Runs,8} {l.P50,8:0.00} {l.P99,8:0.00} {l.Max,8:0.00}"));

        w.WriteLine();
        w.WriteLine("codes by kind and transport");
        foreach (var (kind, transports) in CodesByKind.OrderBy(k => k.Key))
            foreach (var (transport, codes) in transports.OrderBy(t => t.Key))
                w.WriteLine($"  {kind,-11}{transport,-5} " + string.Join("  ", codes.Select(c => $"{c.Key} {c.Value}")));

        w.WriteLine();
        w.WriteLine(string.Create(inv, $"{"case",-34}{"runs",7}{"pass",7}{"wrong",6}{"unexp",6}{"shed",5}{"p50 ms",8}{"p99 ms",8}  codes"));
        foreach (var c in Cases)
        {
            w.WriteLine(string.Create(inv,
                $"{c.Case,-34}{c.Runs,7}{c.Passed,7}{c.WrongAnswers,6}{c.UnexpectedCodes,6}{c.Shed,5}{c.Latency.P50,8:0.0}{c.Latency.P99,8:0.0}  {string.Join(" ", c.Codes.Select(k => $"{k.Key}:{k.Value}"))}"));
        }

        w.WriteLine();
        w.WriteLine(string.Create(inv, $"{"t s",6}{"req/s",8}{"RSS MiB",9}{"pooled out B",14}{"retained MiB",14}{"sessions",9}{"queue",6}"));
        int step = Math.Max(1, (int)Math.Ceiling(Series.Count / 30.0));
        for (int i = 0; i < Series.Count; i++)
        {
            if (i % step != 0 && i != Series.Count - 1) continue;
            var s = Series[i];
            var previous = i >= step ? Series[i - step] : null;
            double rate = previous is null ? s.Requests / Math.Max(1e-3, s.Seconds) : (s.Requests - previous.Requests) / Math.Max(1e-3, s.Seconds - previous.Seconds);
            w.WriteLine(string.Create(inv,
                $"{s.Seconds,6:0}{rate,8:0}{s.RssMib,9:0.0}{s.PooledOutstanding,14}{s.PooledRetained / 1048576.0,14:0.0}{s.OpenSessions,9}{s.QueueLength,6}"));
        }
        w.WriteLine("memory: " + JsonSerializer.Serialize(Memory));

        if (Failures.Count > 0)
        {
            w.WriteLine();
            w.WriteLine("examples of failures (at most 3 per case):");
            foreach (var f in Failures.OrderBy(f => f.Case))
                w.WriteLine($"  {f.Case}: {f.Verdict} code={f.Code} expected={string.Join("|", f.Expected)} {f.Detail}");
        }

        w.WriteLine();
        foreach (var c in Checks) w.WriteLine($"  [{(c.Passed ? "ok" : "FAIL")}] {c.Name}: {c.Detail}");
        w.WriteLine($"verdict: {Verdict}");
    }

    public async Task WriteJsonAsync(string path)
    {
        var options = new JsonSerializerOptions { WriteIndented = true, PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower };
        await using var file = File.Create(path);
        await JsonSerializer.SerializeAsync(file, new
        {
            verdict = Verdict, config = Config, requests = Requests, case_runs = CaseRuns, requests_per_second = RequestsPerSecond,
            case_runs_per_second = CaseRunsPerSecond, latency_ms = new { overall = Overall, by_kind = ByKind }, codes_by_kind = CodesByKind,
            cases = Cases, failures = Failures, memory = Memory, series = Series, checks = Checks,
        }, options);
    }
}
