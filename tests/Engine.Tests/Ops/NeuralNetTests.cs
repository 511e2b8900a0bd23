using AutogradService.Engine.Autodiff;
using AutogradService.Engine.Ops;
using AutogradService.Engine.Tensors;

namespace AutogradService.Engine.Tests.Ops;

public class NeuralNetTests
{
    private static void Near(double[] expected, double[] actual, double tol = 1e-12)
    {
        Assert.Equal(expected.Length, actual.Length);
        for (int i = 0; i < expected.Length; i++) Assert.True(Math.Abs(expected[i] - actual[i]) <= tol, $"element {i}: expected {expected[i]}, got {actual[i]}");
    }

    [Fact]
    public void SoftmaxOfARow()
    {
        using var scope = new ExecutionScope();
        var x = scope.FromArray([1.0, 2, 3]);
        Near([0.09003057317038046, 0.24472847105479767, 0.6652409557748219], F.Softmax(x).ToDoubles());
        Near([-2.4076059644443806, -1.4076059644443806, -0.4076059644443806], F.LogSoftmax(x).ToDoubles());
    }

    [Fact]
    public void SoftmaxIsStableForLargeLogits()
    {
        using var scope = new ExecutionScope();
        var x = scope.FromArray([1000f, 1000f, 0f, -1000f], 2, 2);
        Near([0.5, 0.5, 1, 0], F.Softmax(x, axis: 1).ToDoubles());
        Near([-Math.Log(2), -Math.Log(2), 0, -1000], F.LogSoftmax(x, axis: 1).ToDoubles(), 1e-4);
        Assert.Equal(DType.Float32, F.Softmax(x).DType);
    }

    [Fact]
    public void SoftmaxAlongAnAxisSumsToOne()
    {
        using var scope = new ExecutionScope();
        var x = scope.FromArray(Enumerable.Range(0, 24).Select(i => Math.Sin(i)).ToArray(), 2, 3, 4);
        var sums = F.Sum(F.Softmax(x, axis: 1), [1]).ToDoubles();
        Near(Enumerable.Repeat(1.0, 8).ToArray(), sums);
        Assert.Equal(1.0, F.Softmax(scope.Scalar(3.5, DType.Float64)).ToScalar());
    }

    [Fact]
    public void SoftmaxRejectsABadAxis()
    {
        using var scope = new ExecutionScope();
        var e = Assert.Throws<EngineException>(() => F.Softmax(scope.Zeros(new Shape(2, 3)), axis: 2));
        Assert.Equal(ErrorCodes.InvalidGraph, e.Code);
    }

    [Fact]
    public void CrossEntropyMatchesTheDefinition()
    {
        using var scope = new ExecutionScope();
        var logits = scope.FromArray([1.0, 2, 3, 1, 2, 3], 2, 3).RequireGrad();
        var labels = scope.FromArray([2L, 0L]);
        Near([0.4076059644443806, 2.4076059644443806], F.CrossEntropy(logits, labels, "none").ToDoubles());
        Assert.Equal(2.8152119288887612, F.CrossEntropy(logits, labels, "sum").ToScalar(), 12);
        var loss = F.CrossEntropy(logits, labels);
        Assert.Equal(Shape.Scalar, loss.Shape);
        Assert.Equal(1.4076059644443806, loss.ToScalar(), 12);

        // d(mean loss)/d logits = (softmax - one_hot) / N.
        var g = ReverseMode.Grad(loss, logits).ToDoubles();
        double[] p = [0.09003057317038046, 0.24472847105479767, 0.6652409557748219];
        Near([p[0] / 2, p[1] / 2, (p[2] - 1) / 2, (p[0] - 1) / 2, p[1] / 2, p[2] / 2], g);
    }

    [Fact]
    public void CrossEntropyNamesALabelOutOfRange()
    {
        using var scope = new ExecutionScope();
        var logits = scope.Zeros(new Shape(3, 4));
        var e = Assert.Throws<EngineException>(() => F.CrossEntropy(logits, scope.FromArray([0L, 4L, 1L])));
        Assert.Equal(ErrorCodes.InvalidTensor, e.Code);
        Assert.Contains("label 4 at position 1", e.Message);
        Assert.Equal("cross_entropy", e.Op);
        var negative = Assert.Throws<EngineException>(() => F.CrossEntropy(logits, scope.FromArray([0L, 1L, -1L])));
        Assert.Contains("label -1 at position 2", negative.Message);
    }

    [Fact]
    public void CrossEntropyChecksTypes()
    {
        using var scope = new ExecutionScope();
        var logits = scope.Zeros(new Shape(3, 4));
        Assert.Equal(ErrorCodes.DTypeMismatch, Assert.Throws<EngineException>(() => F.CrossEntropy(logits, scope.FromArray([0.0, 1, 2]))).Code);
        Assert.Equal(ErrorCodes.ShapeMismatch, Assert.Throws<EngineException>(() => F.CrossEntropy(logits, scope.FromArray([0L, 1L]))).Code);
        Assert.Equal(ErrorCodes.ShapeMismatch, Assert.Throws<EngineException>(() => F.CrossEntropy(scope.Zeros(new Shape(4)), scope.FromArray([0L]))).Code);
        Assert.Equal(ErrorCodes.InvalidGraph, Assert.Throws<EngineException>(() => F.CrossEntropy(logits, scope.FromArray([0L, 1L, 2L]), "avg")).Code);
    }

    [Fact]
    public void CrossEntropyDoesNotDifferentiateLabels()
    {
        using var scope = new ExecutionScope();
        var logits = scope.FromArray([0.5f, -1f, 2f, 0f], 2, 2).RequireGrad();
        var loss = F.CrossEntropy(logits, scope.FromArray([1L, 0L]));
        Assert.True(loss.RequiresGrad);
        Assert.Equal(DType.Float32, loss.DType);
        ReverseMode.Backward(loss);
        Assert.Equal(DType.Float32, logits.Grad!.DType);
    }

    [Fact]
    public void MseLossReductions()
    {
        using var scope = new ExecutionScope();
        var a = scope.FromArray([1.0, 2, 3]).RequireGrad();
        var b = scope.FromArray([1.0, 1, 1]);
        Assert.Equal(5.0 / 3, F.MseLoss(a, b).ToScalar(), 14);
        Assert.Equal(5.0, F.MseLoss(a, b, "sum").ToScalar());
        Assert.Equal([0.0, 1, 4], F.MseLoss(a, b, "none").ToDoubles());
        Near([0, 2.0 / 3, 4.0 / 3], ReverseMode.Grad(F.MseLoss(a, b), a).ToDoubles());
    }

    [Fact]
    public void MseLossPromotesAndBroadcasts()
    {
        using var scope = new ExecutionScope();
        var a = scope.FromArray([1f, 2f, 3f, 4f], 2, 2);
        var b = scope.FromArray([1.0, 2.0]);
        var loss = F.MseLoss(a, b, "none");
        Assert.Equal(new TensorType(new Shape(2, 2), DType.Float64), loss.Type);
        Assert.Equal([0.0, 0, 4, 4], loss.ToDoubles());
    }
}
