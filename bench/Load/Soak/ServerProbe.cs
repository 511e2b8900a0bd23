using System.Globalization;

namespace AutogradService.Load.Soak;

/// <summary>One look at the server: its RSS (from /proc) and the gauges of /metrics that show leaks and backlog.</summary>
public sealed record ServerSample(double Seconds, long Requests, double? RssMib, long? PooledOutstanding, long? PooledRetained,
    long? OpenSessions, long? QueueLength, long? Running);

/// <summary>
/// Reads the server's resident set from <c>/proc/PID/status</c> (VmRSS) and scrapes <c>/metrics</c> for
/// <c>autograd_pooled_bytes{state="outstanding"|"retained"}</c>, <c>autograd_open_sessions</c>,
/// <c>autograd_engine_queue_length</c> and <c>autograd_engine_running</c> (src/Api/Metrics/ServiceMetrics.cs).
/// </summary>
public sealed class ServerProbe(Uri rest, int? pid) : IDisposable
{
    private readonly HttpClient _http = new(new SocketsHttpHandler { UseProxy = false }) { BaseAddress = rest, Timeout = TimeSpan.FromSeconds(10) };

    public async Task<ServerSample> SampleAsync(double seconds, long requests)
    {
        Dictionary<string, double> gauges;
        try
        {
            gauges = Parse(await _http.GetStringAsync("/metrics"));
        }
        catch (Exception e) when (e is HttpRequestException or TaskCanceledException)
        {
            gauges = [];
        }
        long? Gauge(string key) => gauges.TryGetValue(key, out var v) ? (long)v : null;
        return new ServerSample(seconds, requests, RssMib(), Gauge("autograd_pooled_bytes{state=\"outstanding\"}"),
            Gauge("autograd_pooled_bytes{state=\"retained\"}"), Gauge("autograd_open_sessions"), Gauge("autograd_engine_queue_length"),
            Gauge("autograd_engine_running"));
    }

    /// <summary>Whether /healthz and /readyz both answer 200.</summary>
    public async Task<bool> HealthyAsync()
    {
        try
        {
            using var live = await _http.GetAsync("/healthz");
            using var ready = await _http.GetAsync("/readyz");
            return live.IsSuccessStatusCode && ready.IsSuccessStatusCode;
        }
        catch (Exception e) when (e is HttpRequestException or TaskCanceledException)
        {
            return false;
        }
    }

    public bool ServerAlive => pid is not { } p || File.Exists($"/proc/{p}/status");

    private double? RssMib()
    {
        if (pid is not { } p) return null;
        try
        {
            foreach (var line in File.ReadLines($"/proc/{p}/status"))
            {
                if (!line.StartsWith("VmRSS:", StringComparison.Ordinal)) continue;
                var kb = line["VmRSS:".Length..].Trim().Split(' ')[0];
                return long.Parse(kb, CultureInfo.InvariantCulture) / 1024.0;
            }
        }
        catch (IOException)
        {
            // The process is gone: reported as a missing sample, and the run fails on the server's health.
        }
        return null;
    }

    private static Dictionary<string, double> Parse(string text)
    {
        var result = new Dictionary<string, double>(StringComparer.Ordinal);
        foreach (var line in text.Split('\n'))
        {
            if (line.Length == 0 || line[0] == '#' || !line.StartsWith("autograd_", StringComparison.Ordinal)) continue;
            int space = line.LastIndexOf(' ');
            if (space > 0 && double.TryParse(line[(space + 1)..], NumberStyles.Float, CultureInfo.InvariantCulture, out var v))
                result[line[..space]] = v;
        }
        return result;
    }

    public void Dispose() => _http.Dispose();
}
