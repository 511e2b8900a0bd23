using AutogradService.Engine.Backends;
using AutogradService.Engine.Graphs;
using AutogradService.Engine.Ops;
using AutogradService.Engine.Tensors;

namespace AutogradService.Engine.Tests.Backends;

/// <summary>Device names, the auto rule, and the meta backend's promise: bytes counted, nothing held, nothing read.</summary>
public class DevicesTests
{
    [Theory]
    [InlineData(null, "cpu")]
    [InlineData("", "cpu")]
    [InlineData("CPU", "cpu")]
    [InlineData("auto", "auto")]
    public void Names_Resolve_CaseInsensitively_EmptyToTheDefault(string? requested, string expected) =>
        Assert.Equal(expected, new Devices().Resolve(requested));

    [Fact]
    public void Gpu_WithoutOne_IsDeviceUnavailable_AndUnknownNamesAnInvalidField()
    {
        var devices = new Devices();
        Assert.Equal(ErrorCodes.DeviceUnavailable, Assert.Throws<EngineException>(() => devices.Resolve("gpu")).Code);
        Assert.Equal(ErrorCodes.DeviceUnavailable, Assert.Throws<EngineException>(() => devices.Resolve("cuda")).Code);
        Assert.Equal(ErrorCodes.DeviceUnavailable, Assert.Throws<EngineException>(() => new Devices(defaultDevice: "gpu").Resolve(null)).Code);
        var e = Assert.Throws<EngineException>(() => devices.Resolve("tpu"));
        Assert.Equal(ErrorCodes.InvalidArgument, e.Code);
        Assert.Equal("device", e.Facts["field"]);
        Assert.Same(CpuBackend.Instance, devices.Place("auto", () => throw new InvalidOperationException("no GPU: the plan is not asked")));
        Assert.Equal(["cpu"], devices.List().Select(d => d.Name));
    }

    [Fact]
    public void Auto_PlacesAGraph_ByItsPlan_AndASessionOnTheCpu()
    {
        // Any second backend shows the rule; the meta backend stands in for a GPU here.
        var devices = new Devices(gpu: MetaBackend.Instance);
        var small = Plan.Build(ProgramParser.Parse("y = 2 * dot(x, x)"), new Dictionary<string, TensorType> { ["x"] = new(Shape.Vector(4), DType.Float32) });
        var large = Plan.Build(ProgramParser.Parse("y = a @ b"), new Dictionary<string, TensorType>
        {
            ["a"] = new(new Shape(1024, 1024), DType.Float32), ["b"] = new(new Shape(1024, 1024), DType.Float32),
        });
        Assert.Same(CpuBackend.Instance, devices.Place("auto", () => small.Estimates));
        Assert.Same(MetaBackend.Instance, devices.Place("auto", () => large.Estimates)); // 2·1024³ FLOPs
        Assert.Same(CpuBackend.Instance, devices.Place("auto"));
        Assert.Same(MetaBackend.Instance, devices.Place("gpu"));
        Assert.Same(CpuBackend.Instance, devices.Place("cpu"));
        Assert.Equal(["cpu", "meta"], devices.List().Select(d => d.Name));
    }

    [Fact]
    public void MetaTensors_ChargeTheBudget_HoldNoValues_AndFreeOnDispose()
    {
        using var scope = new ExecutionScope(new ScopeOptions { Backend = MetaBackend.Instance, MemoryLimitBytes = 1 << 20 });
        var big = scope.Allocate(new Shape(512, 256), DType.Float64); // exactly the limit
        Assert.Equal(1 << 20, scope.Budget.InUseBytes);
        Assert.Equal(ErrorCodes.MemoryLimitExceeded, Assert.Throws<EngineException>(() => scope.Zeros(Shape.Scalar)).Code);
        Assert.Throws<MetaValuesException>(() => big.Span<double>());
        Assert.Equal("Tensor(float64[512, 256])", big.ToString());
        big.Dispose();
        var y = F.Exp(scope.FromArray(new float[] { 1, 2, 3 })); // kernels run and compute nothing
        Assert.Equal(new Shape(3), y.Shape);
        Assert.Equal(24, scope.Budget.InUseBytes);
        Assert.Throws<MetaValuesException>(() => y.ToDoubles());
    }
}
