using System.Diagnostics;
using System.Text;
using System.Text.Json;
using AutogradService.Contracts.V1;
using Google.Protobuf;
using Grpc.Net.Client;

namespace AutogradService.Load;

/// <summary>
/// W8 of the performance issue: requests per second for C1 over gRPC and over REST with 1 and 16 concurrent
/// clients, against an empty RPC on the same server (the transport's own ceiling). The server runs elsewhere
/// (bench/compare.sh starts it); this only generates load on loopback, bounded in time.
/// </summary>
public static class Throughput
{
    public static async Task<int> RunAsync(string[] args)
    {
        var rest = Arg("--rest", "http://127.0.0.1:8080");
        var grpc = Arg("--grpc", "http://127.0.0.1:8081");
        var seconds = double.Parse(Arg("--seconds", "3"), System.Globalization.CultureInfo.InvariantCulture);
        var levels = Arg("--concurrency", "1,16").Split(',').Select(int.Parse).ToArray();

        using var channel = GrpcChannel.ForAddress(grpc, new GrpcChannelOptions { HttpHandler = new SocketsHttpHandler { EnableMultipleHttp2Connections = true } });
        var autodiff = new Autodiff.AutodiffClient(channel);
        using var http = new HttpClient(new SocketsHttpHandler { MaxConnectionsPerServer = 64, UseProxy = false }) { BaseAddress = new Uri(rest) };

        const string program = "y = 2 * dot(x, x)";
        var x = new AutogradService.Contracts.V1.Tensor { Dtype = DType.Float32, Shape = { 4 } };
        x.FloatData.Add([0f, 1f, 2f, 3f]);
        var grpcRequest = new GradientRequest { Computation = new Computation { Program = program }, Inputs = { ["x"] = x }, Wrt = { "x" } };
        var restBody = Encoding.UTF8.GetBytes("{\"program\":\"y = 2 * dot(x, x)\",\"inputs\":{\"x\":[0,1,2,3]},\"wrt\":[\"x\"]}");

        var calls = new (string Name, Func<Task> Call)[]
        {
            ("grpc-ping", async () => await autodiff.PingAsync(new PingRequest())),
            ("grpc-c1", async () =>
            {
                var r = await autodiff.GradientAsync(grpcRequest);
                if (r.Gradients["x"].Raw.Length != 16 && r.Gradients["x"].FloatData.Count != 4) throw new InvalidOperationException("bad C1 reply");
            }),
            ("rest-empty", async () => (await http.GetAsync("/healthz")).EnsureSuccessStatusCode()),
            ("rest-c1", async () =>
            {
                using var content = new ByteArrayContent(restBody);
                content.Headers.ContentType = new("application/json");
                using var r = await http.PostAsync("/v1/gradient", content);
                r.EnsureSuccessStatusCode();
            }),
        };

        var results = new Dictionary<string, object>();
        foreach (var (name, call) in calls)
        {
            // Warm-up by time, not count: tiered JIT needs many calls before the optimised code runs.
            await Measure(call, levels.Max(), TimeSpan.FromSeconds(Math.Min(2, seconds)));
            foreach (int c in levels)
            {
                var (rps, p50) = await Measure(call, c, TimeSpan.FromSeconds(seconds));
                results[$"{name}@{c}"] = new { concurrency = c, rps = Math.Round(rps), p50_us = Math.Round(p50) };
                Console.Error.WriteLine($"{name,-11} x{c,-3} {rps,10:0} req/s  p50 {p50,8:0} us");
            }
        }
        Console.WriteLine(JsonSerializer.Serialize(results));
        return 0;

        string Arg(string name, string fallback)
        {
            int i = Array.IndexOf(args, name);
            return i >= 0 && i + 1 < args.Length ? args[i + 1] : fallback;
        }
    }

    private static async Task<(double Rps, double P50Micros)> Measure(Func<Task> call, int concurrency, TimeSpan duration)
    {
        var stop = Stopwatch.StartNew();
        var latencies = new List<double>[concurrency];
        long done = 0;
        var workers = Enumerable.Range(0, concurrency).Select(async w =>
        {
            var mine = latencies[w] = new List<double>();
            while (stop.Elapsed < duration)
            {
                long t0 = Stopwatch.GetTimestamp();
                await call();
                mine.Add(Stopwatch.GetElapsedTime(t0).TotalMicroseconds);
                Interlocked.Increment(ref done);
            }
        }).ToArray();
        await Task.WhenAll(workers);
        var all = latencies.SelectMany(l => l).Order().ToArray();
        return (done / stop.Elapsed.TotalSeconds, all.Length == 0 ? 0 : all[all.Length / 2]);
    }
}
