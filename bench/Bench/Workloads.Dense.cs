using AutogradService.Engine;
using AutogradService.Engine.Autodiff;
using AutogradService.Engine.Ops;
using AutogradService.Engine.Tensors;

namespace AutogradService.Bench;

/// <summary>Workloads built on matmul; they report "op missing" until <c>F.MatMul</c> is in the engine.</summary>
internal abstract class MatMulWorkload : Workload
{
    public override string? MissingOp => OptionalOps.MatMul is null ? "F.MatMul" : null;

    protected static Tensor MatMul(Tensor a, Tensor b) =>
        (OptionalOps.MatMul ?? throw new InvalidOperationException("F.MatMul is not in this engine yet"))(a, b);
}

/// <summary>W3: an MLP 784-256-256-10 with ReLU and softmax cross-entropy on a batch of 64; gradients of all six parameters.</summary>
internal sealed class Mlp : MatMulWorkload
{
    private const int Batch = 64, In = 784, Hidden = 256, Out = 10;
    private float[] _x = [], _w1 = [], _b1 = [], _w2 = [], _b2 = [], _w3 = [], _b3 = [];
    private long[] _labels = [];

    public override string Id => "W3";

    public override string Title => "MLP 64x784-256-256-10, ReLU, softmax cross-entropy";

    public override void Setup()
    {
        _x = Uniform(Batch * In, 0, 1, 31);
        // Uniform He-style scales keep the activations and the loss in a sensible range.
        _w1 = Uniform(In * Hidden, -Math.Sqrt(6.0 / In), Math.Sqrt(6.0 / In), 32);
        _b1 = Uniform(Hidden, -0.01, 0.01, 33);
        _w2 = Uniform(Hidden * Hidden, -Math.Sqrt(6.0 / Hidden), Math.Sqrt(6.0 / Hidden), 34);
        _b2 = Uniform(Hidden, -0.01, 0.01, 35);
        _w3 = Uniform(Hidden * Out, -Math.Sqrt(6.0 / Hidden), Math.Sqrt(6.0 / Hidden), 36);
        _b3 = Uniform(Out, -0.01, 0.01, 37);
        _labels = new long[Batch];
        for (int i = 0; i < Batch; i++) _labels[i] = i % Out;
    }

    protected override Tensor[] Import(ExecutionScope scope) =>
    [
        scope.FromArray(_x, Batch, In), scope.FromArray(_labels, Batch),
        scope.FromArray(_w1, In, Hidden).RequireGrad(), scope.FromArray(_b1, Hidden).RequireGrad(),
        scope.FromArray(_w2, Hidden, Hidden).RequireGrad(), scope.FromArray(_b2, Hidden).RequireGrad(),
        scope.FromArray(_w3, Hidden, Out).RequireGrad(), scope.FromArray(_b3, Out).RequireGrad(),
    ];

    private static (Tensor Loss, Tensor[] Grads) LossAndGrads(Tensor[] t)
    {
        var (x, labels) = (t[0], t[1]);
        var h1 = F.Relu(MatMul(x, t[2]) + t[3]);
        var h2 = F.Relu(MatMul(h1, t[4]) + t[5]);
        var loss = F.CrossEntropy(MatMul(h2, t[6]) + t[7], labels);
        return (loss, ReverseMode.Grad([loss], null, t[2..]));
    }

    protected override double Compute(ExecutionScope scope, Tensor[] inputs)
    {
        var (loss, grads) = LossAndGrads(inputs);
        return loss.ToScalar() + grads[5].Span<float>()[0];
    }

    protected override void Verify(ExecutionScope scope, Tensor[] inputs)
    {
        var (loss, grads) = LossAndGrads(inputs);
        double l = loss.ToScalar();
        Expect(double.IsFinite(l) && l > 0, $"loss = {l}");
        // d loss / d b3 = mean over the batch of softmax - onehot: its entries sum to zero.
        double sum = 0;
        foreach (var v in grads[5].ToDoubles()) sum += v;
        Expect(Math.Abs(sum) < 1e-5, $"sum of dloss/db3 = {sum}, expected 0");
    }
}

/// <summary>W5: <c>sum(A @ B)</c> with A, B 1024 x 1024; gradients of both.</summary>
internal sealed class MatMulSum : MatMulWorkload
{
    private const int N = 1024;
    private float[] _a = [], _b = [];

    public override string Id => "W5";

    public override string Title => "sum(A @ B), 1024 x 1024";

    public override void Setup()
    {
        _a = Uniform(N * N, -1, 1, 51);
        _b = Uniform(N * N, -1, 1, 52);
    }

    protected override Tensor[] Import(ExecutionScope scope) =>
        [scope.FromArray(_a, N, N).RequireGrad(), scope.FromArray(_b, N, N).RequireGrad()];

    protected override double Compute(ExecutionScope scope, Tensor[] inputs)
    {
        var grads = ReverseMode.Grad([F.Sum(MatMul(inputs[0], inputs[1]))], null, inputs);
        return grads[0].Span<float>()[0] + grads[1].Span<float>()[0];
    }

    protected override void Verify(ExecutionScope scope, Tensor[] inputs)
    {
        var grads = ReverseMode.Grad([F.Sum(MatMul(inputs[0], inputs[1]))], null, inputs);
        var da = grads[0].Span<float>();
        var db = grads[1].Span<float>();
        // dA[i, j] = sum_k B[j, k] (row sums of B); dB[i, j] = sum_k A[k, i] (column sums of A).
        foreach (int i in (ReadOnlySpan<int>)[0, 17, 1023])
        {
            double rowB = 0, colA = 0;
            for (int k = 0; k < N; k++)
            {
                rowB += _b[i * N + k];
                colA += _a[k * N + i];
            }
            Expect(Near(da[5 * N + i], rowB, 1e-3) && Near(db[i * N + 5], colA, 1e-3),
                $"dA[5,{i}] = {da[5 * N + i]} (expected {rowB}), dB[{i},5] = {db[i * N + 5]} (expected {colA})");
        }
    }
}

/// <summary>W7: the 100 x 100 Jacobian of <c>tanh(W x)</c> with respect to x (the engine picks the mode).</summary>
internal sealed class TanhJacobian : MatMulWorkload
{
    private const int N = 100;
    private float[] _w = [], _x = [];

    public override string Id => "W7";

    public override string Title => "Jacobian of tanh(W x), 100 -> 100";

    public override void Setup()
    {
        _w = Uniform(N * N, -0.2, 0.2, 71);
        _x = Uniform(N, -1, 1, 72);
    }

    protected override Tensor[] Import(ExecutionScope scope) => [scope.FromArray(_w, N, N), scope.FromArray(_x, N)];

    private static Tensor Jacobian(Tensor[] inputs)
    {
        var w = inputs[0];
        return Derivatives.Jacobian(xs => [F.Tanh(MatMul(w, xs[0]))], [inputs[1]], JacobianMode.Auto, out _)[0][0];
    }

    protected override double Compute(ExecutionScope scope, Tensor[] inputs) => Jacobian(inputs).Span<float>()[0];

    protected override void Verify(ExecutionScope scope, Tensor[] inputs)
    {
        var j = Jacobian(inputs).Span<float>();
        foreach (int i in (ReadOnlySpan<int>)[0, 42, 99])
        {
            double z = 0;
            for (int k = 0; k < N; k++) z += _w[i * N + k] * _x[k];
            double t = Math.Tanh(z), expected = (1 - t * t) * _w[i * N + 7];
            Expect(Near(j[i * N + 7], expected, 1e-5), $"J[{i},7] = {j[i * N + 7]}, expected {expected}");
        }
    }
}
