using AutogradService.Contracts.V1;
using Google.Protobuf;

namespace AutogradService.Client.Tests;

/// <summary>The tensor helpers, without a server: arrays, spans and System.Numerics.Tensors in and out, dtype kept.</summary>
public sealed class TensorsTests
{
    [Fact]
    public void Arrays_travel_as_raw_little_endian_bytes_with_their_shape()
    {
        var t = Tensors.From([1f, 2, 3, 4, 5, 6], 2, 3);
        Assert.Equal(DType.Float32, t.Dtype);
        Assert.Equal([2L, 3], t.Shape);
        Assert.Equal(24, t.Raw.Length);
        Assert.Equal([1f, 2, 3, 4, 5, 6], t.ToFloatArray());
        Assert.Equal([2, 3], t.Dimensions());
    }

    [Fact]
    public void Each_dtype_is_kept()
    {
        Assert.Equal(DType.Float64, Tensors.From([1.5, 2.5]).Dtype);
        Assert.Equal([1.5, 2.5], Tensors.From([1.5, 2.5]).ToDoubleArray());
        Assert.Equal([3L, -4], Tensors.From([3L, -4]).ToInt64Array());
        Assert.Equal([true, false], Tensors.From([true, false]).ToBoolArray());
        Assert.Empty(Tensors.Scalar(2.0).Shape);
        Assert.Equal(2.0, Tensors.Scalar(2.0).ToScalar());
        Assert.Equal(DType.Int64, Tensors.Scalar(7L).Dtype);
    }

    [Fact]
    public void Two_dimensional_arrays_and_numerics_tensors()
    {
        var t = Tensors.From(new double[,] { { 1, 2 }, { 3, 4 }, { 5, 6 } });
        Assert.Equal([3L, 2], t.Shape);
        Assert.Equal([1.0, 2, 3, 4, 5, 6], t.ToDoubleArray());

        var numerics = System.Numerics.Tensors.Tensor.Create([1f, 2, 3, 4], [2, 2]);
        var fromNumerics = Tensors.From(numerics);
        Assert.Equal([2L, 2], fromNumerics.Shape);
        var back = fromNumerics.ToNumericsTensor();
        Assert.Equal([(nint)2, 2], back.Lengths.ToArray());
        Assert.Equal(4f, back[1, 1]);
        Assert.Equal(6.0, Tensors.From(new double[,] { { 1, 2 }, { 3, 6 } }).ToNumericsTensorOfDouble()[1, 1]);
    }

    [Fact]
    public void Spans_in_and_out()
    {
        ReadOnlySpan<float> data = [1, 2, 3];
        var t = Tensors.From(data, [3]);
        Span<float> destination = stackalloc float[3];
        t.CopyTo(destination);
        Assert.Equal(2f, destination[1]);
    }

    [Fact]
    public void Typed_fields_are_read_as_well_as_raw_bytes()
    {
        var t = new Tensor { Dtype = DType.Float32, Shape = { 2 }, FloatData = { 1.5f, -2 } };
        Assert.Equal([1.5f, -2], t.ToFloatArray());
        var d = new Tensor { Dtype = DType.Float64, DoubleData = { 3 } };
        Assert.Equal(3, d.ToScalar());
    }

    [Fact]
    public void Mismatches_are_refused_with_a_clear_message()
    {
        Assert.Contains("6 elements", Assert.Throws<ArgumentException>(() => Tensors.From([1f, 2, 3], 2, 3)).Message);
        Assert.Contains("float32, not float64", Assert.Throws<InvalidOperationException>(() => Tensors.From([1f]).ToDoubleArray()).Message);
        var shortRaw = new Tensor { Dtype = DType.Float64, Shape = { 2 }, Raw = ByteString.CopyFrom(new byte[8]) };
        Assert.Throws<InvalidOperationException>(() => shortRaw.ToDoubleArray());
        Assert.Throws<InvalidOperationException>(() => Tensors.From([1.0, 2]).ToScalar());
        Span<float> small = stackalloc float[1];
        var two = Tensors.From([1f, 2]);
        try
        {
            two.CopyTo(small);
            Assert.Fail("copying two elements into one must fail");
        }
        catch (ArgumentException e)
        {
            Assert.Contains("holds 1", e.Message);
        }
    }
}

/// <summary>The client pulls in the contracts and gRPC's client side only, never the server's hosting.</summary>
public sealed class DependencyTests
{
    [Fact]
    public void Neither_the_client_nor_the_contracts_reference_ASP_NET_Core()
    {
        foreach (var assembly in new[] { typeof(AutogradClient).Assembly, typeof(Contracts.V1.Tensor).Assembly })
        {
            var names = assembly.GetReferencedAssemblies().Select(a => a.Name!).ToList();
            Assert.DoesNotContain(names, n => n.StartsWith("Microsoft.AspNetCore", StringComparison.Ordinal) || n.StartsWith("Grpc.AspNetCore", StringComparison.Ordinal));
            Assert.DoesNotContain(names, n => n.StartsWith("AutogradService.Engine", StringComparison.Ordinal) || n == "AutogradService.Api");
        }
    }
}
