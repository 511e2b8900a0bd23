using AutogradService.Engine.Backends;
using AutogradService.Engine.Tensors;

namespace AutogradService.Engine.Tests.Backends;

/// <summary>
/// The GPU backend's movement, where, gather and scatter-add kernels on ILGPU's CPU accelerator against
/// <see cref="CpuBackend"/>, bit for bit, in every dtype, at tiny shapes including empty and rank-0 ones, called on the
/// backends directly so each layout is the one written here (negative steps, broadcasts on every operand, repeated and
/// negative indices).
/// </summary>
public class GpuMovementTests
{
    public static IEnumerable<object[]> AllDTypes => Enum.GetValues<DType>().Select(d => new object[] { d });

    public static IEnumerable<object[]> Summable => new[] { DType.Float32, DType.Float64, DType.Int64 }.Select(d => new object[] { d });

    [Theory]
    [MemberData(nameof(AllDTypes))]
    public void Transpose_MatchesTheCpu(DType dtype)
    {
        Check(dtype, [new Shape(2, 3, 4)], new Shape(4, 2, 3), (b, x, y) => b.Transpose(x[0], [2, 0, 1], y));
        Check(dtype, [new Shape()], new Shape(), (b, x, y) => b.Transpose(x[0], [], y));
        Check(dtype, [new Shape(0, 3)], new Shape(3, 0), (b, x, y) => b.Transpose(x[0], [1, 0], y));
    }

    [Theory]
    [MemberData(nameof(AllDTypes))]
    public void Slice_WithNegativeAndLargeSteps_MatchesTheCpu(DType dtype)
    {
        // Rows 4, 2, 0 and columns 1, 3 of a [5, 4].
        Check(dtype, [new Shape(5, 4)], new Shape(3, 2), (b, x, y) => b.Slice(x[0], [4, 1], [-2, 2], y));
        Check(dtype, [new Shape(5, 4)], new Shape(0, 4), (b, x, y) => b.Slice(x[0], [0, 0], [1, 1], y));
    }

    [Theory]
    [MemberData(nameof(AllDTypes))]
    public void SliceScatter_ZeroesTheRest_MatchesTheCpu(DType dtype)
    {
        Check(dtype, [new Shape(3, 2)], new Shape(5, 4), (b, x, y) => b.SliceScatter(x[0], [4, 1], [-2, 2], y));
        Check(dtype, [new Shape(0, 4)], new Shape(5, 4), (b, x, y) => b.SliceScatter(x[0], [0, 0], [1, 1], y));
    }

    [Theory]
    [MemberData(nameof(AllDTypes))]
    public void BroadcastTo_MatchesTheCpu(DType dtype)
    {
        Check(dtype, [new Shape(3, 1)], new Shape(2, 3, 4), (b, x, y) => b.BroadcastTo(x[0], y));
        Check(dtype, [new Shape()], new Shape(2, 2), (b, x, y) => b.BroadcastTo(x[0], y));
        Check(dtype, [new Shape(1)], new Shape(0), (b, x, y) => b.BroadcastTo(x[0], y));
    }

    [Theory]
    [MemberData(nameof(AllDTypes))]
    public void Concat_WithAnEmptyPart_MatchesTheCpu(DType dtype)
    {
        Check(dtype, [new Shape(2, 1, 3), new Shape(2, 0, 3), new Shape(2, 2, 3)], new Shape(2, 3, 3), (b, x, y) => b.Concat(x, 1, y));
        Check(dtype, [new Shape(2), new Shape(3)], new Shape(5), (b, x, y) => b.Concat(x, 0, y));
        // Stack joins inputs one rank below the output through the same kernel.
        Check(dtype, [new Shape(2, 2), new Shape(2, 2)], new Shape(2, 2, 2), (b, x, y) => b.Concat(x, 1, y));
        Check(dtype, [new Shape(), new Shape()], new Shape(2), (b, x, y) => b.Concat(x, 0, y));
    }

    [Theory]
    [MemberData(nameof(AllDTypes))]
    public void Where_BroadcastingEveryOperand_MatchesTheCpu(DType dtype)
    {
        Check(dtype, [new Shape(3, 1), new Shape(2, 3, 4), new Shape()], new Shape(2, 3, 4),
            (b, x, y) => b.Where(x[0], x[1], x[2], y), conditionFirst: true);
        Check(dtype, [new Shape(), new Shape(), new Shape()], new Shape(), (b, x, y) => b.Where(x[0], x[1], x[2], y), conditionFirst: true);
        Check(dtype, [new Shape(0, 1), new Shape(1, 3), new Shape(1)], new Shape(0, 3), (b, x, y) => b.Where(x[0], x[1], x[2], y), conditionFirst: true);
    }

    [Theory]
    [MemberData(nameof(AllDTypes))]
    public void Gather_WithNegativeAndRepeatedIndices_MatchesTheCpu(DType dtype)
    {
        long[] indices = [0, -1, 2, 2];
        Check(dtype, [new Shape(3, 4)], new Shape(3, 2, 2), (b, x, y) => b.Gather(x[0], Indices(x[0], indices, 2, 2), 1, y));
        Check(dtype, [new Shape(3, 4)], new Shape(0, 4), (b, x, y) => b.Gather(x[0], Indices(x[0], [], 0), 0, y));
    }

    [Theory]
    [MemberData(nameof(Summable))]
    public void ScatterAdd_AddsRepeatedIndicesInOrder_MatchesTheCpu(DType dtype)
    {
        long[] indices = [0, -1, 2, 2];
        Check(dtype, [new Shape(3, 2, 2)], new Shape(3, 4), (b, x, y) => b.ScatterAdd(x[0], Indices(x[0], indices, 2, 2), 1, y));
        Check(dtype, [new Shape(3, 0)], new Shape(3, 4), (b, x, y) => b.ScatterAdd(x[0], Indices(x[0], [], 0), 1, y));
        Check(dtype, [new Shape(0)], new Shape(0), (b, x, y) => b.ScatterAdd(x[0], Indices(x[0], [], 0), 0, y));
    }

    [Fact]
    public void Gather_OutOfRange_FailsAsOnTheCpu()
    {
        Exception Run(ExecutionScope scope, IBackend backend)
        {
            var x = scope.FromArray([1f, 2, 3], 3);
            var ix = scope.FromArray(new long[] { 1, 3 }, 2);
            return Assert.ThrowsAny<Exception>(() => backend.Gather(x, ix, 0, scope.Allocate(new Shape(2), DType.Float32)));
        }
        using var gpu = new ExecutionScope(new ScopeOptions { Backend = GpuTestDevice.Backend });
        using var cpu = new ExecutionScope();
        var expected = Run(cpu, CpuBackend.Instance);
        var actual = Run(gpu, GpuTestDevice.Backend);
        Assert.Equal(expected.GetType(), actual.GetType());
        Assert.Equal(expected.Message, actual.Message);
    }

    private static Tensor Indices(Tensor like, long[] values, params int[] shape)
    {
        var t = like.Scope.Allocate(new Shape(shape), DType.Int64);
        values.CopyTo(t.Span<long>());
        return t;
    }

    /// <summary>Fills the same random inputs on both backends, runs <paramref name="run"/> on each and compares the output bytes.</summary>
    private static void Check(DType dtype, Shape[] inputs, Shape output, Action<IBackend, Tensor[], Tensor> run, bool conditionFirst = false)
    {
        using var gpu = new ExecutionScope(new ScopeOptions { Backend = GpuTestDevice.Backend });
        using var cpu = new ExecutionScope();
        var random = new Random(17);
        var gx = new Tensor[inputs.Length];
        var cx = new Tensor[inputs.Length];
        for (int i = 0; i < inputs.Length; i++)
        {
            var type = conditionFirst && i == 0 ? DType.Bool : dtype;
            gx[i] = gpu.Allocate(inputs[i], type);
            cx[i] = cpu.Allocate(inputs[i], type);
            Randomise(gx[i].Bytes(), type, random);
            gx[i].Bytes().CopyTo(cx[i].Bytes());
        }
        var gy = gpu.Allocate(output, dtype);
        var cy = cpu.Allocate(output, dtype);
        // Garbage in the outputs first: a kernel that skips an element shows.
        gy.Bytes().Fill(0x5A);
        cy.Bytes().Fill(0x5A);
        run(GpuTestDevice.Backend, gx, gy);
        run(CpuBackend.Instance, cx, cy);
        Assert.Equal(cy.Bytes().ToArray(), gy.Bytes().ToArray());
    }

    private static void Randomise(Span<byte> bytes, DType dtype, Random random)
    {
        random.NextBytes(bytes);
        if (dtype == DType.Bool)
            for (int i = 0; i < bytes.Length; i++) bytes[i] &= 1;
        else if (dtype is DType.Float32)
            for (int i = 0; i + 4 <= bytes.Length; i += 4) BitConverter.TryWriteBytes(bytes[i..], (float)(random.NextDouble() * 8 - 4));
        else if (dtype is DType.Float64)
            for (int i = 0; i + 8 <= bytes.Length; i += 8) BitConverter.TryWriteBytes(bytes[i..], random.NextDouble() * 8 - 4);
        else
            for (int i = 0; i + 8 <= bytes.Length; i += 8) BitConverter.TryWriteBytes(bytes[i..], (long)random.Next(-1000, 1000));
    }
}
