using GrpcStatus = Grpc.Core.StatusCode;

namespace AutogradService.Load.Soak;

/// <summary>What a request is meant to provoke: a result, a documented limit, or a documented refusal of bad input.</summary>
public enum Kind
{
    Valid,
    OverLimit,
    Malformed,
}

/// <summary>
/// One kind of request the driver sends. <see cref="Run"/> performs it (one call, or a short conversation such as a
/// session) and reports the code it got; <see cref="Expected"/> lists the codes the contract allows ("ok" for a
/// result). A valid case also checks the numbers it got against what it computed itself.
/// </summary>
public sealed record Case(string Name, Kind Kind, string Transport, int Weight, string[] Expected, Func<CaseContext, Task<Outcome>> Run)
{
    public static Case Valid(string name, string transport, int weight, Func<CaseContext, Task<Outcome>> run) =>
        new(name, Kind.Valid, transport, weight, ["ok"], run);

    public static Case OverLimit(string name, string transport, int weight, string expected, Func<CaseContext, Task<Outcome>> run) =>
        new(name, Kind.OverLimit, transport, weight, [expected], run);

    /// <summary>An over-limit case that either of <paramref name="expected"/> may refuse (two limits racing).</summary>
    public static Case OverLimit(string name, string transport, int weight, string[] expected, Func<CaseContext, Task<Outcome>> run) =>
        new(name, Kind.OverLimit, transport, weight, expected, run);

    /// <summary>
    /// What stops a counting loop given a 1–3 ms deadline: the deadline, or — when the timer fires late on a loaded
    /// machine — the server's iteration limit (100,000 iterations take ~20 ms). Either is the contract's refusal.
    /// </summary>
    public static readonly string[] DeadlineOrIterationLimit = ["deadline_exceeded", "iteration_limit_exceeded"];

    public static Case Malformed(string name, string transport, int weight, string expected, Func<CaseContext, Task<Outcome>> run) =>
        new(name, Kind.Malformed, transport, weight, [expected], run);

    public static string KindName(Kind kind) => kind switch
    {
        Kind.Valid => "valid",
        Kind.OverLimit => "over_limit",
        _ => "malformed",
    };
}

/// <summary>
/// What one case run observed: the code of its last answer ("ok" for a result; the contract's code from problem
/// details or the gRPC <c>autograd-code</c> trailer; otherwise <c>http_NNN</c> / <c>grpc_Status</c>), how many requests
/// it sent, and, when the numbers were wrong, what differed.
/// </summary>
public readonly record struct Outcome(string Code, int Requests, string? WrongAnswer = null, string? Detail = null)
{
    public static Outcome Ok(int requests = 1) => new("ok", requests);
}

/// <summary>How a case run ended, judged against its case.</summary>
public enum Verdict
{
    Passed,
    WrongAnswer,
    UnexpectedCode,

    /// <summary><c>overloaded</c>: documented back-pressure (engine queue or session cap full), counted apart.</summary>
    Shed,
}

/// <summary>The contract's error table (docs: /work/shared/spec/api.md, src/Api/Errors/ErrorCatalog.cs): each code's HTTP and gRPC statuses.</summary>
public static class Contract
{
    public const string Overloaded = "overloaded";

    public static readonly IReadOnlyDictionary<string, (int[] Http, GrpcStatus[] Grpc)> Codes =
        new Dictionary<string, (int[], GrpcStatus[])>
        {
            ["invalid_graph"] = ([400], [GrpcStatus.InvalidArgument]),
            ["shape_mismatch"] = ([400], [GrpcStatus.InvalidArgument]),
            ["dtype_mismatch"] = ([400], [GrpcStatus.InvalidArgument]),
            ["invalid_tensor"] = ([400], [GrpcStatus.InvalidArgument]),
            ["not_differentiable"] = ([400], [GrpcStatus.InvalidArgument]),
            ["graph_freed"] = ([409], [GrpcStatus.FailedPrecondition]),
            ["memory_limit_exceeded"] = ([413, 422], [GrpcStatus.ResourceExhausted]),
            ["iteration_limit_exceeded"] = ([422], [GrpcStatus.ResourceExhausted]),
            [Overloaded] = ([429, 503], [GrpcStatus.ResourceExhausted, GrpcStatus.Unavailable]),
            ["deadline_exceeded"] = ([504], [GrpcStatus.DeadlineExceeded]),
            ["not_found"] = ([404], [GrpcStatus.NotFound]),
            ["invalid_argument"] = ([400], [GrpcStatus.InvalidArgument]),
            ["unsupported_media_type"] = ([415], [GrpcStatus.InvalidArgument]),
            ["device_unavailable"] = ([400], [GrpcStatus.FailedPrecondition]),
            ["request_too_large"] = ([413], [GrpcStatus.ResourceExhausted]),
            ["unauthenticated"] = ([401], [GrpcStatus.Unauthenticated]),
            ["quota_exceeded"] = ([429], [GrpcStatus.ResourceExhausted]),
        };

    /// <summary>A REST answer's code, with the status appended when the status is not the one the code maps to.</summary>
    public static string RestCode(int status, string? code)
    {
        if (status is >= 200 and < 300) return "ok";
        if (code is null) return $"http_{status}";
        return Codes.TryGetValue(code, out var s) && s.Http.Contains(status) ? code : $"{code}/http_{status}";
    }

    /// <summary>A gRPC failure's code: the <c>autograd-code</c> trailer (checked against the status), or the bare status.</summary>
    public static string GrpcCode(GrpcStatus status, string? code)
    {
        if (status == GrpcStatus.OK) return "ok";
        if (string.IsNullOrEmpty(code)) return $"grpc_{status}";
        return Codes.TryGetValue(code, out var s) && s.Grpc.Contains(status) ? code : $"{code}/grpc_{status}";
    }
}
