using AutogradService.Api.Errors;
using AutogradService.Engine.Memory;
using AutogradService.Engine.Sessions;

namespace AutogradService.Fuzz.Harness;

public enum OutcomeKind
{
    /// <summary>The input decoded and ran; whatever it computed came back.</summary>
    Result,

    /// <summary>The input was refused or failed with an error code of the contract (never <c>internal</c>).</summary>
    Documented,

    /// <summary>A failure the lead already tracks (see <see cref="KnownIssues"/>); counted, not reported as a crash.</summary>
    Known,

    /// <summary>Anything else: an exception the service would answer with 500 / INTERNAL, or leaked pooled memory.</summary>
    Crash,
}

/// <summary>What one input did to one target.</summary>
public sealed record Outcome(OutcomeKind Kind, string Summary, Exception? Exception = null)
{
    public static Outcome Result(string summary = "result") => new(OutcomeKind.Result, summary);

    public override string ToString() => Kind switch
    {
        OutcomeKind.Crash when Exception is not null => $"CRASH {Summary}\n{Exception}",
        OutcomeKind.Crash => $"CRASH {Summary}",
        OutcomeKind.Documented => $"documented {Summary}",
        OutcomeKind.Known => $"known issue {Summary}",
        _ => Summary,
    };
}

/// <summary>
/// The harness's one rule: an exception is fine when the service would answer it with an error code of the contract
/// (what <see cref="ApiError.From"/> maps to a code other than <c>internal</c>: engine errors, service errors, malformed
/// JSON, cancellation); anything else is a crash. A decoder is also held to giving back every pooled byte it took.
/// </summary>
public static class Classifier
{
    public static Outcome Run(Func<string> work)
    {
        long pooledBefore = BufferPool.Shared.OutstandingBytes;
        Outcome outcome;
        try
        {
            outcome = Outcome.Result(work());
        }
        catch (Exception e)
        {
            outcome = Classify(e);
        }
        long pooledAfter = BufferPool.Shared.OutstandingBytes;
        if (pooledAfter != pooledBefore && outcome.Kind != OutcomeKind.Crash)
            return new Outcome(OutcomeKind.Crash, $"pooled bytes went from {pooledBefore} to {pooledAfter} after '{outcome.Summary}'");
        return outcome;
    }

    public static Outcome Classify(Exception e)
    {
        e = Unwrap(e);
        if (KnownIssues.Match(e) is { } known) return new Outcome(OutcomeKind.Known, known, e);
        var error = ApiError.From(e);
        if (error.Code == ErrorCatalog.Internal || ErrorCatalog.StatusFor(error.Code).Http == 500)
            return new Outcome(OutcomeKind.Crash, $"{e.GetType().FullName}: {e.Message}", e);
        if (RuntimeMessages.FirstOrDefault(m => error.Detail.Contains(m, StringComparison.Ordinal)) is { } leaked)
            return new Outcome(OutcomeKind.Crash, $"{error.Code} carries the runtime's own message '{leaked}': {Clip(error.Detail)}", e);
        return new Outcome(OutcomeKind.Documented, $"{error.Code}: {Clip(error.Detail)}");
    }

    /// <summary>
    /// .NET's own exception messages: a documented code whose detail carries one is a runtime failure passed off as
    /// the client's error (the contract's details say what was wrong with the request, not what broke inside).
    /// </summary>
    private static readonly string[] RuntimeMessages =
    [
        "Arithmetic operation resulted in an overflow", "Index was outside the bounds of the array", "Object reference not set to an instance",
        "Specified argument was out of the range", "Value cannot be null", "Nullable object must have a value", "Unable to cast object",
        "Sequence contains no", "Collection was modified", "Destination array was not long enough", "Attempted to divide by zero",
        "An item with the same key has already been added", "The given key", "Input string was not in a correct format",
    ];

    /// <summary>The failure a client would see: a session batch reports its command's error; tasks wrap theirs.</summary>
    private static Exception Unwrap(Exception e)
    {
        while (true)
        {
            switch (e)
            {
                case SessionBatchException batch:
                    e = batch.Error;
                    continue;
                case AggregateException { InnerExceptions.Count: 1 } aggregate:
                    e = aggregate.InnerExceptions[0];
                    continue;
                default:
                    return e;
            }
        }
    }

    private static string Clip(string s) => s.Length <= 160 ? s : s[..160] + "...";
}

/// <summary>
/// Failures the lead has already reproduced and is fixing (issue #9). Each matcher is narrow — the exception type, its
/// message and the frame that throws — so a different bug on the same input still counts as a crash. Remove an entry
/// when its fix lands; <c>FUZZ_STRICT=1</c> turns them all into crashes.
/// </summary>
public static class KnownIssues
{
    private static readonly bool Strict = Environment.GetEnvironmentVariable("FUZZ_STRICT") == "1";

    // Empty: every finding so far is fixed, its reproducers replayed from tests/Fuzz/regressions/ (docs/RELIABILITY.md,
    // "Findings"). A new finding in code someone else is changing goes here, matched narrowly on exception type, message
    // and throwing frame, until its fix lands.
    private static readonly (string Id, Func<Exception, bool> Matches)[] Entries = [];

    /// <summary>The id of the tracked issue <paramref name="e"/> is, or null.</summary>
    public static string? Match(Exception e)
    {
        if (Strict) return null;
        foreach (var (id, matches) in Entries)
            if (matches(e)) return id;
        return null;
    }

}
