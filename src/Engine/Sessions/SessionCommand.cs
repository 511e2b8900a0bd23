using AutogradService.Engine.Ops;
using AutogradService.Engine.Tensors;

namespace AutogradService.Engine.Sessions;

/// <summary>The commands of a session, the same whichever transport carries them.</summary>
public abstract record SessionCommand
{
    public sealed record Variable(string Name, HostTensor Value, bool RequiresGrad = true) : SessionCommand;
    public sealed record Constant(string Name, HostTensor Value) : SessionCommand;
    public sealed record Apply(string Op, IReadOnlyList<string> Inputs, Attributes Attrs, string Output) : SessionCommand;
    public sealed record Program(string Text) : SessionCommand;
    public sealed record Fetch(string Name) : SessionCommand;
    public sealed record Backward(string Output, HostTensor? Seed = null, bool RetainGraph = false, bool CreateGraph = false) : SessionCommand;
    /// <summary>Returns a leaf's gradient; with <paramref name="Output"/> also binds it as a value (after a create_graph
    /// backward it is itself differentiable, which is how a session takes second derivatives, case E1).</summary>
    public sealed record Grad(string Name, string? Output = null) : SessionCommand;
    public sealed record ZeroGrad(IReadOnlyList<string> Names) : SessionCommand;
    public sealed record Detach(string Name, string Output) : SessionCommand;
    public sealed record NoGrad(bool Enabled) : SessionCommand;
    public sealed record Release(IReadOnlyList<string> Names) : SessionCommand;
}

/// <summary>A batch stopped at a failing command: which one, and the results of those before it.</summary>
public sealed class SessionBatchException(int commandIndex, EngineException error, IReadOnlyList<HostTensor?> completed)
    : Exception(error.Message, error)
{
    public int CommandIndex { get; } = commandIndex;
    public EngineException Error { get; } = error;
    public IReadOnlyList<HostTensor?> Completed { get; } = completed;
}

