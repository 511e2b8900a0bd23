using Grpc.Core;
using static AutogradService.Api.Tests.Infrastructure.TestGraph;

namespace AutogradService.Api.Tests.Infrastructure;

/// <summary>The chapter's cases (shared/spec/d2l-cases.md) as programs and graphs, with their numbers.</summary>
public static class Cases
{
    public const string C1Program = "t = dot(x, x)\ny = 2 * t";
    public const string C3Program = "y = x * x";

    /// <summary>f(x) = log(x^2) sin(x) + 1/x with every chain-rule term named (E1, E5, E6, E7).</summary>
    public const string E6Program = "square = x ** 2\nlg = log(square)\nsn = sin(x)\nproduct = lg * sn\nrecip = 1 / x\nf = product + recip";

    public static readonly float[] X = [0, 1, 2, 3];
    public static readonly double[] E6X = [0.5, 1, 2, -1.5];
    public static readonly double[] E6F = [1.335375079256127, 1.0, 1.7605538953892688, -1.4755654918281964];
    public static readonly double[] E6Df = [-3.2988856025489586, 0.682941969615793, 0.08239541392249738, 0.9429118052705564];
    public static readonly double[] E1D2 = [19.84988110703323, 2.4782672538567656, -2.2974962818963944, 0.9143359051031112];

    /// <summary>E6's x as a float64 JSON tensor.</summary>
    public static object E6XJson => new { dtype = "float64", shape = new[] { 4 }, data = E6X };

    /// <summary>C1 as a graph: t = dot(x, x); y = 2 * t.</summary>
    public static TestGraph C1Graph => new(
        [new GInput("x", "float32", [4])],
        [N("dot", ["x", "x"], "t"), N("mul", [2.0, "t"], "y")],
        ["y"]);

    /// <summary>
    /// C5 (E3 with a vector a): b = 2a; while norm(b) &lt; 1000: b = 2b; c = b if sum(b) &gt; 0 else 100 b — a graph with a
    /// while node (attrs cond, body) and an if node (attrs then, else). The subgraphs name their input b, shadowing.
    /// </summary>
    public static TestGraph C5Graph(int[] shape, long? maxIterations = null)
    {
        var cond = new TestGraph([new GInput("b")], [N("norm", ["b"], "n"), N("lt", ["n", 1000.0], "go")], ["go"]);
        var body = new TestGraph([new GInput("b")], [N("mul", [2.0, "b"], "b2")], ["b2"]);
        var then = new TestGraph([new GInput("b")], [], ["b"]);
        var otherwise = new TestGraph([new GInput("b")], [N("mul", [100.0, "b"], "scaled")], ["scaled"]);
        var loopAttrs = new Dictionary<string, object> { ["cond"] = cond, ["body"] = body };
        if (maxIterations is { } m) loopAttrs["max_iterations"] = m;
        return new TestGraph([new GInput("a", "float32", shape)],
        [
            N("mul", [2.0, "a"], "b0"),
            new GNode("while", ["b0"], ["b"], loopAttrs, "loop"),
            N("sum", ["b"], "s"),
            N("gt", ["s", 0.0], "positive"),
            new GNode("if", ["positive", "b"], ["c"], new Dictionary<string, object> { ["then"] = then, ["else"] = otherwise }, "choose"),
        ], ["c"]);
    }

    /// <summary>A counting loop: i from 0 while i &lt; n (n a float32 scalar input); the output is the final i.</summary>
    public static TestGraph CountingLoop(long? maxIterations = null)
    {
        var cond = new TestGraph([new GInput("i"), new GInput("n")], [N("lt", ["i", "n"], "go")], ["go"]);
        var body = new TestGraph([new GInput("i"), new GInput("n")], [N("add", ["i", 1.0], "i2")], ["i2", "n"]);
        var attrs = new Dictionary<string, object> { ["cond"] = cond, ["body"] = body };
        if (maxIterations is { } m) attrs["max_iterations"] = m;
        return new TestGraph([new GInput("i0", "float32", []), new GInput("n", "float32", [])],
            [new GNode("while", ["i0", "n"], ["i", "n_out"], attrs, "loop")], ["i"]);
    }

    /// <summary>
    /// A loop that only a deadline (or the server's iteration limit) stops: carries a large tensor x and multiplies
    /// it by 1 each iteration, so each iteration costs real work and the run takes seconds.
    /// </summary>
    public static TestGraph EndlessLoop()
    {
        var cond = new TestGraph([new GInput("i"), new GInput("x")], [N("lt", ["i", 1e30], "go")], ["go"]);
        var body = new TestGraph([new GInput("i"), new GInput("x")], [N("add", ["i", 1.0], "i2"), N("mul", ["x", 1.0], "x2")], ["i2", "x2"]);
        return new TestGraph([new GInput("i0", "float32", []), new GInput("x0", "float32", [-1])],
            [new GNode("while", ["i0", "x0"], ["i", "x"], new Dictionary<string, object> { ["cond"] = cond, ["body"] = body }, "loop")],
            ["x"]);
    }

    /// <summary>A JSON evaluate body for <see cref="EndlessLoop"/> over a vector of <paramref name="elements"/> ones.</summary>
    public static object EndlessLoopRequest(int elements, int? timeoutMs = null) => new Dictionary<string, object?>
    {
        ["graph"] = EndlessLoop().ToJson(),
        ["inputs"] = new Dictionary<string, object>
        {
            ["i0"] = 0,
            ["x0"] = new { dtype = "float32", shape = new[] { elements }, b64 = Convert.ToBase64String(new byte[elements * 4]) },
        },
        ["limits"] = timeoutMs is { } t ? new { timeout_ms = t } : null,
    };
}

/// <summary>Checks a gRPC failure: the status, and the google.rpc.ErrorInfo reason the service attaches.</summary>
public static class GrpcErrors
{
    public static async Task<RpcException> Expect(StatusCode status, string reason, Func<Task> call)
    {
        var e = await Assert.ThrowsAsync<RpcException>(call);
        Check(e, status, reason);
        return e;
    }

    public static void Check(RpcException e, StatusCode status, string reason)
    {
        Assert.True(e.StatusCode == status, $"expected {status}/{reason}, got {e.StatusCode}: {e.Status.Detail}");
        var rich = e.GetRpcStatus();
        Assert.NotNull(rich);
        var info = rich!.GetDetail<Google.Rpc.ErrorInfo>();
        Assert.NotNull(info);
        Assert.Equal(reason, info!.Reason);
        Assert.Equal(reason, e.Trailers.GetValue("autograd-code"));
        Assert.DoesNotContain("   at ", e.Status.Detail);
    }

    public static Google.Rpc.ErrorInfo Info(RpcException e) => e.GetRpcStatus()!.GetDetail<Google.Rpc.ErrorInfo>()!;
}
