using AutogradService.Engine.Autodiff;
using AutogradService.Engine.Graphs;
using AutogradService.Engine.Ops;
using AutogradService.Engine.Tensors;

namespace AutogradService.Engine.Tests.Tensors;

/// <summary>
/// Every shape is checked when it is made, so no tensor can claim more elements than its buffer holds: the
/// 2^64-element shape [65536, 65536, 65536, 65536] (whose count wrapped to 0) and everything else past
/// <see cref="Shape.MaxElements"/> is refused with a stable code, never an overflow or an out-of-bounds read.
/// </summary>
public class ShapeLimitTests
{
    private static readonly int[] Wrapping = [65536, 65536, 65536, 65536];

    [Fact]
    public void AShapeAtTheLimitIsAcceptedAndOnePastItIsNot()
    {
        Assert.Equal(Shape.MaxElements, new Shape((int)Shape.MaxElements).ElementCount);
        Assert.Equal(Shape.MaxElements, new Shape(1, (int)Shape.MaxElements, 1).ElementCount);
        var e = Assert.Throws<EngineException>(() => new Shape((int)Shape.MaxElements + 1));
        Assert.Equal(ErrorCodes.InvalidTensor, e.Code);
        Assert.Contains("more than", e.Message);
    }

    [Fact]
    public void ProductsThatWouldWrapAreRefused()
    {
        Assert.Equal(ErrorCodes.InvalidTensor, Assert.Throws<EngineException>(() => new Shape(Wrapping)).Code);
        Assert.Equal(ErrorCodes.InvalidTensor, Assert.Throws<EngineException>(() => new Shape(int.MaxValue, int.MaxValue)).Code);
        // Even with a zero dimension the others' product is held to the limit, so strides stay small.
        Assert.Equal(ErrorCodes.InvalidTensor, Assert.Throws<EngineException>(() => new Shape([.. Wrapping, 0])).Code);
        Assert.Equal(0, new Shape(0, 1 << 20, 100).ElementCount);
    }

    [Fact]
    public void LongDimensionsAreCheckedBeforeNarrowing()
    {
        Assert.Equal(new Shape(2, 3), Shape.FromLongs([2, 3]));
        foreach (long[] bad in new long[][] { [1L << 32], [-1], [long.MaxValue], [long.MinValue, 2], new long[9] })
            Assert.Equal(ErrorCodes.InvalidTensor, Assert.Throws<EngineException>(() => Shape.FromLongs(bad)).Code);
    }

    [Fact]
    public void ScalarsAndDefaultShapesHaveOneElement()
    {
        Assert.Equal(1, Shape.Scalar.ElementCount);
        Assert.Equal(1, default(Shape).ElementCount);
        Assert.Equal(new[] { 12L, 4, 1 }, new Shape(2, 3, 4).Strides());
    }

    [Theory]
    [InlineData("y = zeros(shape=[65536, 65536, 65536, 65536])")]
    [InlineData("y = slice(zeros(shape=[65536,65536,65536,65536]), starts=[0,0,0,0], stops=[1,1,1,16])")]
    [InlineData("y = ones(shape=[4294967296])")]
    [InlineData("y = full(shape=[-1], value=1)")]
    [InlineData("y = broadcast_to(x, shape=[65536, 65536, 65536, 65536])")]
    [InlineData("y = broadcast_to(x, shape=[4294967297])")]
    [InlineData("y = reshape(x, shape=[2147483647, 2147483647, 2147483647, -1])")]
    [InlineData("y = reshape(x, shape=[65536, 65536, 65536, 65536])")]
    [InlineData("y = sum(x, axes=[4294967296])")]
    [InlineData("y = concat(x, x, axis=9223372036854775807)")]
    [InlineData("y = flatten(x, start_axis=-9223372036854775808)")]
    [InlineData("y = slice_scatter(x, shape=[65536, 65536, 65536, 65536, 1])")]
    [InlineData("y = outer(reshape(x, shape=[-1]), ones(shape=[268435455]))")]
    public void HostileShapesFailWithAStableCodeBeforeAnyKernelRuns(string program)
    {
        using var scope = new ExecutionScope(new ScopeOptions { MemoryLimitBytes = 1 << 20 });
        var x = scope.FromArray([1f, 2, 3, 4], 2, 2);
        var graph = ProgramParser.Parse(program);
        var e = Assert.Throws<EngineException>(() =>
        {
            var inputs = graph.Inputs.Count == 0 ? new Dictionary<string, Tensor>() : new Dictionary<string, Tensor> { ["x"] = x };
            GraphFunctions.Evaluate(scope, GraphFunctions.Prepare(graph, inputs), inputs);
        });
        Assert.Contains(e.Code, new[] { ErrorCodes.InvalidGraph, ErrorCodes.InvalidTensor, ErrorCodes.ShapeMismatch, ErrorCodes.MemoryLimitExceeded });
        Assert.DoesNotContain("overflow", e.Message, StringComparison.OrdinalIgnoreCase);
    }

    [Theory]
    [InlineData("y = sum(2, axes=[0])")]
    [InlineData("y = sum(2, axes=[-1])")]
    [InlineData("y = mean(2, axes=[0], keepdims=true)")]
    public void AScalarReducedOverItsOneAxis_IsItself(string program)
    {
        // Found by the fuzzer: a scalar naming axis 0 reached the kernels as a rank-1 reduction (PyTorch allows it).
        using var scope = new ExecutionScope();
        var graph = ProgramParser.Parse(program);
        var inputs = new Dictionary<string, Tensor>();
        var y = GraphFunctions.Evaluate(scope, GraphFunctions.Prepare(graph, inputs), inputs).Outputs["y"];
        Assert.Equal(0, y.Rank);
        Assert.Equal(2f, y.ToArray<float>()[0]);
    }

    [Fact]
    public void ConcatenatedLengthsThatPassIntRangeAreRefused()
    {
        var big = new TensorType(new Shape((int)Shape.MaxElements), DType.Float32);
        var e = Assert.Throws<EngineException>(() => ConcatOp.Instance.InferType(Enumerable.Repeat(big, 9).ToArray(), Attributes.Empty));
        Assert.Contains(e.Code, new[] { ErrorCodes.InvalidGraph, ErrorCodes.InvalidTensor });
    }
}
