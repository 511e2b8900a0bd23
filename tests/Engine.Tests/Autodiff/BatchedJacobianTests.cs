using AutogradService.Engine.Autodiff;
using AutogradService.Engine.Ops;
using AutogradService.Engine.Tensors;

namespace AutogradService.Engine.Tests.Autodiff;

/// <summary>
/// The one-pass (batched-cotangent) reverse Jacobian against forward mode, which shares no code with it, on functions
/// that take the batched path (elementwise, scalar operands, reshape, every matmul operand shape) and ones that fall
/// back to one backward pass per row.
/// </summary>
public class BatchedJacobianTests
{
    private static double[] Values(int n, int seed)
    {
        var random = new Random(seed);
        var v = new double[n];
        for (int i = 0; i < n; i++) v[i] = random.NextDouble() * 2 - 1;
        return v;
    }

    public static TheoryData<string> Cases => new()
    {
        "tanh(W x)", "sigmoid(x W) * 3 - x", "relu(W x + b) / 2", "x * x + exp(x)", "W X", "reshape(x)", "sum (fallback)",
        "x^T W (vector-matrix)", "matrix input sin(X) * X", "outer x b + b (broadcast operands)",
    };

    private static Tensor[] Apply(string name, Tensor[] xs, Tensor w, Tensor b, Tensor m)
    {
        var x = xs[0];
        return name switch
        {
            "tanh(W x)" => [F.Tanh(F.MatMul(w, x))],
            "sigmoid(x W) * 3 - x" => [F.Sigmoid(F.MatMul(x, w)) * 3.0 - x],
            "relu(W x + b) / 2" => [F.Relu(F.MatMul(w, x) + b) / 2.0],
            "x * x + exp(x)" => [x * x + F.Exp(x)],
            "W X" => [F.MatMul(w, F.Reshape(x, 5, 1)) * F.Reshape(x, 5, 1)],
            "reshape(x)" => [F.Reshape(F.Sin(x), 1, 5) * 2.0],
            "sum (fallback)" => [F.Sum(F.Sin(x)) * x],
            "x^T W (vector-matrix)" => [F.Cos(F.MatMul(x, m))],
            "matrix input sin(X) * X" => [F.MatMul(F.Sin(F.Reshape(x, 5, 1)), F.Reshape(x, 1, 5))],
            "outer x b + b (broadcast operands)" => [F.Tanh(F.Reshape(x, 5, 1) * F.Reshape(b, 1, 5) + b) / (F.Reshape(x, 5, 1) * F.Reshape(x, 5, 1) + 1.0)],
            _ => throw new ArgumentException(name),
        };
    }

    [Theory]
    [MemberData(nameof(Cases))]
    public void ReverseMatchesForward(string name)
    {
        using var scope = new ExecutionScope();
        var w = scope.FromArray(Values(25, 1), 5, 5);
        var b = scope.FromArray(Values(5, 2), 5);
        var m = scope.FromArray(Values(15, 3), 5, 3);
        var x = scope.FromArray(Values(5, 4), 5);
        var reverse = Derivatives.Jacobian(xs => Apply(name, xs, w, b, m), [x], JacobianMode.Reverse, out _)[0][0];
        var forward = Derivatives.Jacobian(xs => Apply(name, xs, w, b, m), [x], JacobianMode.Forward, out _)[0][0];
        Assert.Equal(forward.Shape, reverse.Shape);
        var (r, f) = (reverse.ToDoubles(), forward.ToDoubles());
        for (int i = 0; i < r.Length; i++) Assert.Equal(f[i], r[i], 12);
    }
}
