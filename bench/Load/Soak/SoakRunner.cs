using System.Collections.Concurrent;
using System.Diagnostics;
using AutogradService.Contracts.V1;

namespace AutogradService.Load.Soak;

/// <summary>One case run as recorded by a client.</summary>
public readonly record struct RunRecord(int Case, double Seconds, float LatencyMs, int Requests, Verdict Verdict, string Code);

/// <summary>A run that did not pass, kept as an example for the report.</summary>
public sealed record Failure(string Case, string Kind, string Verdict, string Code, string[] Expected, string? Detail);

/// <summary>
/// The soak: registers a model, starts <see cref="SoakOptions.Clients"/> clients that each pick weighted random cases
/// until the time is up, samples the server every second, then waits for it to go idle and checks that it gave back
/// what it took (pooled bytes, sessions) and is still healthy.
/// </summary>
public static class SoakRunner
{
    public static IReadOnlyList<Case> Cases(SoakOptions options) =>
        RestCases.All().Concat(GrpcCases.All()).Where(options.Includes).ToList();

    public static async Task<int> RunAsync(string[] args)
    {
        SoakOptions options;
        try
        {
            options = SoakOptions.Parse(args);
        }
        catch (Exception e) when (e is ArgumentException or FormatException or UriFormatException)
        {
            Console.Error.WriteLine(e.Message);
            Console.Error.WriteLine(SoakOptions.Usage);
            return 2;
        }
        var cases = Cases(options);
        if (options.List)
        {
            foreach (var c in cases) Console.WriteLine($"{c.Name,-34} {Case.KindName(c.Kind),-10} weight {c.Weight,2}  expects {string.Join(" | ", c.Expected)}");
            return 0;
        }
        if (cases.Count == 0)
        {
            Console.Error.WriteLine("no cases left after --only/--exclude");
            return 2;
        }

        using var connections = new Connections(options.Rest, options.Grpc);
        using var probe = new ServerProbe(options.Rest, options.ServerPid);
        if (!await WaitReadyAsync(probe))
        {
            Console.Error.WriteLine($"the server at {options.Rest} is not ready");
            return 1;
        }
        var fixtures = new Fixtures($"load-c1-{Environment.ProcessId}-{Random.Shared.Next(100_000)}", options.MaxNodes);
        try
        {
            await connections.Models.PutAsync(new PutModelRequest { Name = fixtures.ModelName, Program = Fixtures.C1 });
        }
        catch (Grpc.Core.RpcException e)
        {
            Console.Error.WriteLine($"could not register the model the model cases use: {e.Status}");
            return 1;
        }

        var idle = await probe.SampleAsync(0, 0);
        var (records, failures, series, elapsed) = await DriveAsync(options, cases, connections, probe, fixtures);

        await connections.Models.DeleteAsync(new DeleteModelRequest { Name = fixtures.ModelName });
        var end = await SettleAsync(probe, idle, elapsed.TotalSeconds, series.Count > 0 ? series[^1].Requests : 0);
        bool healthy = probe.ServerAlive && await probe.HealthyAsync();

        var report = SoakReport.Build(options, cases, records, failures, series, idle, end, healthy, elapsed);
        report.Print(Console.Out);
        if (options.JsonOut is { } path) await report.WriteJsonAsync(path);
        return report.Passed ? 0 : 1;
    }

    private static async Task<(List<RunRecord>, List<Failure>, List<ServerSample>, TimeSpan)> DriveAsync(SoakOptions options, IReadOnlyList<Case> cases,
        Connections connections, ServerProbe probe, Fixtures fixtures)
    {
        int totalWeight = cases.Sum(c => c.Weight);
        var clock = Stopwatch.StartNew();
        long requests = 0;
        var failures = new ConcurrentQueue<Failure>();
        var failuresPerCase = new int[cases.Count];
        var perClient = new List<RunRecord>[options.Clients];

        var series = new List<ServerSample>();
        using var stopSampling = new CancellationTokenSource();
        var sampler = Task.Run(async () =>
        {
            using var timer = new PeriodicTimer(TimeSpan.FromSeconds(1));
            try
            {
                while (await timer.WaitForNextTickAsync(stopSampling.Token))
                    series.Add(await probe.SampleAsync(clock.Elapsed.TotalSeconds, Interlocked.Read(ref requests)));
            }
            catch (OperationCanceledException)
            {
                // The run is over.
            }
        });

        var clients = Enumerable.Range(0, options.Clients).Select(id => Task.Run(async () =>
        {
            var rng = new Random(options.Seed * 7919 + id);
            var context = new CaseContext(connections, rng, fixtures);
            var mine = perClient[id] = new List<RunRecord>(4096);
            while (clock.Elapsed < options.Duration)
            {
                int index = Pick(cases, rng.Next(totalWeight));
                var c = cases[index];
                long started = Stopwatch.GetTimestamp();
                var outcome = await RunOneAsync(c, context);
                var latency = Stopwatch.GetElapsedTime(started);
                Interlocked.Add(ref requests, outcome.Requests);
                var verdict = Judge(c, outcome);
                mine.Add(new RunRecord(index, clock.Elapsed.TotalSeconds, (float)latency.TotalMilliseconds, outcome.Requests, verdict, outcome.Code));
                if (verdict is Verdict.WrongAnswer or Verdict.UnexpectedCode && Interlocked.Increment(ref failuresPerCase[index]) <= 3)
                    failures.Enqueue(new Failure(c.Name, Case.KindName(c.Kind), verdict.ToString(), outcome.Code, c.Expected, outcome.WrongAnswer ?? Clip(outcome.Detail)));
            }
        })).ToArray();
        await Task.WhenAll(clients);
        var elapsed = clock.Elapsed;
        stopSampling.Cancel();
        await sampler;
        return (perClient.SelectMany(r => r).ToList(), failures.ToList(), series, elapsed);
    }

    private static int Pick(IReadOnlyList<Case> cases, int ticket)
    {
        for (int i = 0; i < cases.Count; i++)
        {
            ticket -= cases[i].Weight;
            if (ticket < 0) return i;
        }
        return cases.Count - 1;
    }

    /// <summary>Runs one case; a failure of the transport itself (refused, reset, no answer in 60 s) is an unexpected code.</summary>
    private static async Task<Outcome> RunOneAsync(Case c, CaseContext context)
    {
        try
        {
            return await c.Run(context).WaitAsync(TimeSpan.FromSeconds(60));
        }
        catch (Exception e) when (e is HttpRequestException or TimeoutException or TaskCanceledException or IOException or Grpc.Core.RpcException)
        {
            return new Outcome($"transport:{e.GetType().Name}", 1, Detail: e.Message);
        }
        catch (Exception e)
        {
            // An answer the case could not even read (a missing field, a body of the wrong shape): counted, never fatal.
            return new Outcome($"unreadable:{e.GetType().Name}", 1, Detail: e.Message);
        }
    }

    private static Verdict Judge(Case c, Outcome o)
    {
        if (c.Expected.Contains(o.Code)) return o.WrongAnswer is null ? Verdict.Passed : Verdict.WrongAnswer;
        return o.Code == Contract.Overloaded ? Verdict.Shed : Verdict.UnexpectedCode;
    }

    private static async Task<bool> WaitReadyAsync(ServerProbe probe)
    {
        for (int i = 0; i < 60; i++)
        {
            if (await probe.HealthyAsync()) return true;
            await Task.Delay(500);
        }
        return false;
    }

    /// <summary>
    /// After the load: waits (up to 15 s) until the pool's outstanding bytes are back at their idle value and no
    /// session is open, then two more seconds for the runtime to settle, and samples once more.
    /// </summary>
    private static async Task<ServerSample> SettleAsync(ServerProbe probe, ServerSample idle, double seconds, long requests)
    {
        var clock = Stopwatch.StartNew();
        ServerSample sample;
        do
        {
            await Task.Delay(500);
            sample = await probe.SampleAsync(seconds + clock.Elapsed.TotalSeconds, requests);
        }
        while ((sample.PooledOutstanding != idle.PooledOutstanding || sample.OpenSessions is not (0 or null)) && clock.Elapsed < TimeSpan.FromSeconds(15));
        await Task.Delay(2000);
        return await probe.SampleAsync(seconds + clock.Elapsed.TotalSeconds, requests);
    }

    private static string? Clip(string? s) => s is null || s.Length <= 300 ? s : s[..300] + "...";
}
