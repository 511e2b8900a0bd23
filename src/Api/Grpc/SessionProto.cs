using AutogradService.Contracts.V1;
using AutogradService.Engine;
using AutogradService.Engine.Sessions;

namespace AutogradService.Api.Grpc;

/// <summary>Session commands from protobuf to the engine's <see cref="SessionCommand"/>.</summary>
public static class SessionProto
{
    public static SessionCommand ToEngine(Command c, long maxElements, Engine.Graphs.GraphLimits limits) => c.KindCase switch
    {
        Command.KindOneofCase.Variable => new SessionCommand.Variable(c.Variable.Name, Tensor(c.Variable.Value, c.Variable.Name, maxElements), c.Variable.RequiresGrad),
        Command.KindOneofCase.Constant => new SessionCommand.Constant(c.Constant.Name, Tensor(c.Constant.Value, c.Constant.Name, maxElements)),
        Command.KindOneofCase.Apply when !string.IsNullOrEmpty(c.Apply.Program) => new SessionCommand.Program(c.Apply.Program),
        Command.KindOneofCase.Apply => new SessionCommand.Apply(c.Apply.Op, c.Apply.Inputs.ToList(), ProtoMapping.ToEngine(c.Apply.Attrs, limits.Guard()), c.Apply.Output),
        Command.KindOneofCase.Fetch => new SessionCommand.Fetch(c.Fetch.Name),
        Command.KindOneofCase.Backward => new SessionCommand.Backward(c.Backward.Output,
            c.Backward.Seed is null ? null : ProtoMapping.ToEngine(c.Backward.Seed, "seed", maxElements), c.Backward.RetainGraph, c.Backward.CreateGraph),
        Command.KindOneofCase.Grad => new SessionCommand.Grad(c.Grad.Name, string.IsNullOrEmpty(c.Grad.Output) ? null : c.Grad.Output),
        Command.KindOneofCase.ZeroGrad => new SessionCommand.ZeroGrad(c.ZeroGrad.Names.ToList()),
        Command.KindOneofCase.Detach => new SessionCommand.Detach(c.Detach.Name, c.Detach.Output),
        Command.KindOneofCase.NoGrad => new SessionCommand.NoGrad(c.NoGrad.Enabled),
        Command.KindOneofCase.Release => new SessionCommand.Release(c.Release.Names.ToList()),
        _ => throw EngineException.InvalidArgument("empty command"),
    };

    private static Engine.Tensors.HostTensor Tensor(Contracts.V1.Tensor? t, string name, long maxElements) =>
        t is null ? throw EngineException.InvalidTensor($"'{name}' needs a value", name) : ProtoMapping.ToEngine(t, name, maxElements);
}
