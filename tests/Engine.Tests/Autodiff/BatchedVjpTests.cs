using AutogradService.Engine.Graphs;
using AutogradService.Engine.Tensors;

namespace AutogradService.Engine.Tests.Autodiff;

/// <summary>
/// Batched vector-Jacobian products (<see cref="GraphFunctions.Vjp"/> with a leading batch axis on the cotangents):
/// every row equals the unbatched VJP of that row, whether the batch ran as one backward pass (elementwise ops and
/// matmul) or row by row (a reduction on the way); and the cotangents' shapes are checked.
/// </summary>
public class BatchedVjpTests
{
    private static double[] Values(int n, int seed)
    {
        var random = new Random(seed);
        var v = new double[n];
        for (int i = 0; i < n; i++) v[i] = random.NextDouble() * 2 - 1;
        return v;
    }

    private static (ExecutionScope Scope, Plan Plan, Dictionary<string, Tensor> Inputs) Setup(string program, params string[] outputs)
    {
        var scope = new ExecutionScope();
        var inputs = new Dictionary<string, Tensor>(StringComparer.Ordinal)
        {
            ["x"] = scope.FromArray(Values(6, 1), 2, 3),
            ["w"] = scope.FromArray(Values(12, 2), 3, 4),
        };
        // A bias row and a scalar, for the programs that name them (broadcast operands).
        if (program.Contains("bias", StringComparison.Ordinal)) inputs["bias"] = scope.FromArray(Values(4, 3), 4);
        if (program.Contains("scale", StringComparison.Ordinal)) inputs["scale"] = scope.Scalar(Values(1, 4)[0], DType.Float64);
        var plan = GraphFunctions.Prepare(ProgramParser.Parse(program, outputs.Length > 0 ? outputs : null), inputs);
        return (scope, plan, inputs);
    }

    [Theory]
    [InlineData("y = tanh(x @ w) * 2", true)]
    [InlineData("h = sigmoid(x @ w)\ny = h * h - h", true)]
    [InlineData("y = tanh(x @ w + bias) * scale", true)]
    [InlineData("y = (x @ w - bias) / (bias * bias + 1) + scale", true)]
    [InlineData("y = sum(tanh(x @ w), axes=[0])", false)]
    public void EveryRow_IsThatRowsVjp_OnePassWhereTheOpsAllow(string program, bool onePass)
    {
        var (scope, plan, inputs) = Setup(program);
        using var _ = scope;
        var outShape = GraphFunctions.Evaluate(scope, plan, inputs).Outputs["y"].Shape;
        const int batch = 3;
        var seed = scope.FromArray(Values(batch * (int)outShape.ElementCount, 7), [batch, .. outShape.ToArray()]);
        var batched = GraphFunctions.Vjp(scope, plan, inputs, new Dictionary<string, Tensor> { ["y"] = seed });
        Assert.Equal(batch, batched.Batch);
        Assert.Equal(onePass, batched.OnePass);

        var rows = seed.ToDoubles();
        int rowLength = (int)outShape.ElementCount;
        foreach (var name in new[] { "x", "w" })
        {
            var all = batched.Gradients[name];
            Assert.Equal([batch, .. inputs[name].Shape.ToArray()], all.Shape.ToArray());
            var got = all.ToDoubles();
            for (int b = 0; b < batch; b++)
            {
                var row = scope.FromArray(rows.AsSpan(b * rowLength, rowLength).ToArray(), outShape.ToArray());
                var single = GraphFunctions.Vjp(scope, plan, inputs, new Dictionary<string, Tensor> { ["y"] = row });
                Assert.Null(single.Batch);
                var expected = single.Gradients[name].ToDoubles();
                for (int i = 0; i < expected.Length; i++) Assert.Equal(expected[i], got[b * expected.Length + i], 12);
            }
        }
    }

    [Fact]
    public void AnOutputWithoutACotangent_IsSeededWithOnesInEveryRow()
    {
        var (scope, plan, inputs) = Setup("y = tanh(x @ w)\nz = sum(x * x)", "y", "z");
        using var _ = scope;
        var seed = scope.Zeros(new Shape(2, 2, 4), DType.Float64);
        var r = GraphFunctions.Vjp(scope, plan, inputs, new Dictionary<string, Tensor> { ["y"] = seed }, wrt: ["x"]);
        // Only z contributes: d/dx sum(x*x) = 2x, in both rows.
        var x = inputs["x"].ToDoubles();
        var g = r.Gradients["x"].ToDoubles();
        for (int b = 0; b < 2; b++)
            for (int i = 0; i < x.Length; i++) Assert.Equal(2 * x[i], g[b * x.Length + i], 12);
    }

    [Fact]
    public void CotangentShapes_AreChecked()
    {
        var (scope, plan, inputs) = Setup("y = tanh(x @ w)\nz = x * 2", "y", "z");
        using var _ = scope;
        var wrongShape = Assert.Throws<EngineException>(() =>
            GraphFunctions.Vjp(scope, plan, inputs, new Dictionary<string, Tensor> { ["y"] = scope.Zeros(new Shape(4, 2), DType.Float64) }));
        Assert.Equal(ErrorCodes.ShapeMismatch, wrongShape.Code);
        Assert.Contains("[B, ...", wrongShape.Detail);
        var mixed = Assert.Throws<EngineException>(() => GraphFunctions.Vjp(scope, plan, inputs, new Dictionary<string, Tensor>
        {
            ["y"] = scope.Zeros(new Shape(3, 2, 4), DType.Float64),
            ["z"] = scope.Zeros(new Shape(2, 3), DType.Float64),
        }));
        Assert.Equal(ErrorCodes.ShapeMismatch, mixed.Code);
        var sizes = Assert.Throws<EngineException>(() => GraphFunctions.Vjp(scope, plan, inputs, new Dictionary<string, Tensor>
        {
            ["y"] = scope.Zeros(new Shape(3, 2, 4), DType.Float64),
            ["z"] = scope.Zeros(new Shape(2, 2, 3), DType.Float64),
        }));
        Assert.Contains("same batch size", sizes.Detail);
        var notOutput = Assert.Throws<EngineException>(() =>
            GraphFunctions.Vjp(scope, plan, inputs, new Dictionary<string, Tensor> { ["q"] = scope.Zeros(new Shape(2), DType.Float64) }));
        Assert.Equal(ErrorCodes.InvalidArgument, notOutput.Code);
    }

    [Fact]
    public void AnEmptyBatch_GivesEmptyGradients()
    {
        var (scope, plan, inputs) = Setup("y = tanh(x @ w)");
        using var _ = scope;
        var r = GraphFunctions.Vjp(scope, plan, inputs, new Dictionary<string, Tensor> { ["y"] = scope.Zeros(new Shape(0, 2, 4), DType.Float64) });
        Assert.Equal(0, r.Batch);
        Assert.Equal([0, 3, 4], r.Gradients["w"].Shape.ToArray());
    }
}
