using AutogradService.Engine.Tensors;

namespace AutogradService.Engine.Graphs;

public sealed partial class Interpreter
{
    /// <summary>
    /// Runs cond, then body, until cond is false. The carried values of each iteration are ordinary tensors, so
    /// the tape records every iteration's ops; reverse mode then walks back through exactly the trip count taken.
    /// </summary>
    private void RunWhile(Frame frame, PlannedNode node)
    {
        var carried = ResolveInputs(frame, node, 0);
        foreach (var t in carried) Bind(t);
        long limit = Math.Min(node.MaxIterations ?? long.MaxValue, _scope.MaxLoopIterations);
        var cond = node.Cond!;
        var body = node.Body!;
        for (long iteration = 0; ; iteration++)
        {
            _scope.ThrowIfCancelled();
            bool again;
            // The condition yields a bool, which has no derivative: nothing in it needs recording.
            using (_scope.NoGrad())
            {
                var c = RunGraph(cond, frame, carried, cond.Liveness, cond.Graph.Outputs)[0];
                again = ReadCondition(c, node, "the cond graph's output", iteration);
                Unbind(c);
            }
            if (!again) break;
            if (iteration >= limit)
            {
                var e = EngineException.IterationLimit(limit, node.Path);
                e.Facts["max_iterations"] = limit;
                e.Facts["limit_source"] = node.MaxIterations is { } own && own <= _scope.MaxLoopIterations ? "max_iterations" : "server";
                throw e;
            }
            var next = RunGraph(body, frame, carried, body.Liveness, body.Graph.Outputs);
            foreach (var t in carried) Unbind(t);
            carried = next;
            _iterations++;
        }
        for (int j = 0; j < carried.Length; j++)
        {
            carried[j].Name ??= node.Outputs[j];
            frame.Values[node.Outputs[j]] = carried[j]; // the loop's binding passes to the frame
        }
    }

    /// <summary>Runs the branch the condition picks; only its ops are recorded, so only it is differentiated.</summary>
    private void RunIf(Frame frame, PlannedNode node)
    {
        var inputs = ResolveInputs(frame, node, 0);
        bool condition = ReadCondition(inputs[0], node, $"the condition '{node.Inputs[0]}'", 0);
        var branch = condition ? node.Then! : node.Else!;
        var results = RunGraph(branch, frame, inputs[1..], branch.Liveness, branch.Graph.Outputs);
        for (int j = 0; j < results.Length; j++)
        {
            results[j].Name ??= node.Outputs[j];
            frame.Values[node.Outputs[j]] = results[j];
        }
    }

    private bool ReadCondition(Tensor c, PlannedNode node, string what, long iteration)
    {
        if (c.DType != DType.Bool)
            throw EngineException.DTypeMismatch($"{what} must be a bool scalar, got {c.Type}", node.Path, node.OpName);
        if (c.ElementCount != 1)
            throw EngineException.ShapeMismatch($"{what} must be a bool scalar (one element), got {c.Type}", node.Path, node.OpName);
        return _conditions?.Decide(node, iteration) ?? c.Span<bool>()[0];
    }
}
