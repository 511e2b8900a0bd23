using System.Globalization;

namespace AutogradService.Load.Soak;

/// <summary>The soak command's options; see <see cref="Usage"/>.</summary>
public sealed record SoakOptions
{
    public Uri Rest { get; init; } = new("http://127.0.0.1:8080");
    public Uri Grpc { get; init; } = new("http://127.0.0.1:8081");
    public TimeSpan Duration { get; init; } = TimeSpan.FromSeconds(60);
    public TimeSpan Warmup { get; init; } = TimeSpan.FromSeconds(5);

    /// <summary>
    /// When the RSS baseline is taken (default: half-way). The GC grows its committed heap and the runtime's array pools
    /// fill for a while under load (about a minute for this mix on 2 busy cores), so "flat" compares the end with a point
    /// past that ramp, not with the first seconds.
    /// </summary>
    public TimeSpan? RssBaseline { get; init; }

    public TimeSpan RssBaselineAt => RssBaseline ?? Duration / 2;
    public int Clients { get; init; } = 32;
    public int? ServerPid { get; init; }
    public string? JsonOut { get; init; }
    public int Seed { get; init; } = 9;

    /// <summary>Largest allowed growth of RSS from the end of warm-up to the end of the run, as a fraction.</summary>
    public double RssMargin { get; init; } = 0.25;

    /// <summary>Growth allowed on top of <see cref="RssMargin"/>, in MiB (the runtime's heap settles in steps of this size).</summary>
    public double RssSlackMiB { get; init; } = 32;

    /// <summary>Server limit the too-many-nodes requests pass by one.</summary>
    public int MaxNodes { get; init; } = 10_000;

    public string[] Exclude { get; init; } = [];
    public string[] Only { get; init; } = [];
    public bool List { get; init; }

    public const string Usage =
        """
        soak: mixed valid / over-limit / malformed requests over REST and gRPC for a fixed time, every answer checked.
          --rest URL            REST base address (default http://127.0.0.1:8080)
          --grpc URL            gRPC (h2c) address (default http://127.0.0.1:8081)
          --duration SECONDS    length of the run, warm-up included (default 60)
          --warmup SECONDS      first part of the run left out of latency and throughput (default 5)
          --clients N           concurrent clients, each one request at a time (default 32)
          --pid PID             the server's process id, to sample its RSS from /proc/PID/status
          --json-out FILE       write the full report (series included) as JSON
          --seed N              random seed of the request mix (default 9)
          --rss-baseline SECONDS  when the RSS baseline is taken (default: half the duration)
          --rss-margin F        allowed RSS growth from the baseline to the end, fraction (default 0.25) ...
          --rss-slack-mib M     ... plus this many MiB (default 32)
          --max-nodes N         the server's Limits:MaxNodes (default 10000)
          --exclude A,B         leave out cases whose name starts with any of these
          --only A,B            run only cases whose name starts with any of these
          --list                print the cases and exit
        Exit code: 0 when the verdict is PASS, 1 when it is FAIL, 2 for bad options.
        """;

    public static SoakOptions Parse(string[] args)
    {
        var o = new SoakOptions();
        for (int i = 0; i < args.Length; i++)
        {
            string Value() => i + 1 < args.Length ? args[++i] : throw new ArgumentException($"{args[i]} needs a value");
            o = args[i] switch
            {
                "--rest" => o with { Rest = new Uri(Value()) },
                "--grpc" => o with { Grpc = new Uri(Value()) },
                "--duration" => o with { Duration = Seconds(Value()) },
                "--warmup" => o with { Warmup = Seconds(Value()) },
                "--clients" => o with { Clients = Positive(Value(), "--clients") },
                "--pid" => o with { ServerPid = Positive(Value(), "--pid") },
                "--json-out" => o with { JsonOut = Value() },
                "--seed" => o with { Seed = int.Parse(Value(), CultureInfo.InvariantCulture) },
                "--rss-baseline" => o with { RssBaseline = Seconds(Value()) },
                "--rss-margin" => o with { RssMargin = double.Parse(Value(), CultureInfo.InvariantCulture) },
                "--rss-slack-mib" => o with { RssSlackMiB = double.Parse(Value(), CultureInfo.InvariantCulture) },
                "--max-nodes" => o with { MaxNodes = Positive(Value(), "--max-nodes") },
                "--exclude" => o with { Exclude = Names(Value()) },
                "--only" => o with { Only = Names(Value()) },
                "--list" => o with { List = true },
                _ => throw new ArgumentException($"unknown option {args[i]}"),
            };
        }
        if (o.Warmup >= o.Duration) throw new ArgumentException("--warmup must be shorter than --duration");
        if (o.RssBaselineAt >= o.Duration) throw new ArgumentException("--rss-baseline must be before the end of --duration");
        return o;
    }

    public bool Includes(Case c) =>
        (Only.Length == 0 || Only.Any(p => c.Name.StartsWith(p, StringComparison.Ordinal))) &&
        !Exclude.Any(p => c.Name.StartsWith(p, StringComparison.Ordinal));

    private static TimeSpan Seconds(string s) => TimeSpan.FromSeconds(double.Parse(s, CultureInfo.InvariantCulture));

    private static int Positive(string s, string name) =>
        int.TryParse(s, NumberStyles.Integer, CultureInfo.InvariantCulture, out int v) && v > 0 ? v : throw new ArgumentException($"{name} must be a positive integer");

    private static string[] Names(string s) => s.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
}
