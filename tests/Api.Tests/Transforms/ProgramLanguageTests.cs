using AutogradService.Api.Tests.Infrastructure;
using AutogradService.Contracts.V1;
using AutogradService.Tests.Shared;
using static AutogradService.Api.Tests.Infrastructure.JsonKit;
using static AutogradService.Api.Tests.Infrastructure.Tensors;

namespace AutogradService.Api.Tests.Transforms;

/// <summary>
/// The chapter's <c>f(a)</c> cells sent as programs exactly as the seed has them, over REST and gRPC (C5, E3), and a
/// program's syntax error as a client sees it.
/// </summary>
public sealed class ProgramLanguageTests(DefaultService service) : IClassFixture<DefaultService>
{
    private readonly HttpClient _rest = service.CreateClient();
    private readonly Autodiff.AutodiffClient _grpc = service.Autodiff;

    public static IEnumerable<object[]> Cells() => SeedCells.WithCases();

    [Theory]
    [MemberData(nameof(Cells))]
    public async Task C5_SeedCells_OverRest(string cell, double a, double c, double grad)
    {
        var r = (await _rest.Post("/v1/gradient", new { program = cell, inputs = new { a } })).Ok();
        Assert.Equal(c, One(r.Body.At("outputs", "c")), Math.Abs(c) * 1e-6);
        Assert.Equal(grad, One(r.Body.At("gradients", "a")), grad * 1e-6);
    }

    [Theory]
    [MemberData(nameof(Cells))]
    public async Task C5_SeedCells_OverGrpc(string cell, double a, double c, double grad)
    {
        var request = new GradientRequest { Computation = new Computation { Program = cell } };
        request.Inputs["a"] = F32Scalar((float)a);
        var r = await _grpc.GradientAsync(request);
        Assert.Equal(c, One(r.Outputs["c"]), Math.Abs(c) * 1e-6);
        Assert.Equal(grad, One(r.Gradients["a"]), grad * 1e-6);
    }

    [Fact]
    public async Task E3_VectorA_GradientAndJacobian()
    {
        var inputs = new { a = new[] { 0.3, -0.2, 0.1 } };
        var g = (await _rest.Post("/v1/gradient", new { program = SeedCells.PyTorch, inputs })).Ok();
        Close([1228.8, -819.2, 409.6], Values(g.Body.At("outputs", "c")), 1e-3);
        Assert.Equal([4096.0, 4096, 4096], Values(g.Body.At("gradients", "a")));
        var j = (await _rest.Post("/v1/jacobian", new { program = SeedCells.Jax, inputs })).Ok();
        Assert.Equal([4096.0, 0, 0, 0, 4096, 0, 0, 0, 4096], Values(j.Body.At("jacobians", "c", "a")));
    }

    [Fact]
    public async Task C4_DetachCellAsWritten_OverRest()
    {
        var r = (await _rest.Post("/v1/gradient", new
        {
            program = "y = x * x\nu = y.detach()\nz = u * x\n", inputs = new { x = Cases.X }, outputs = new[] { "z" },
        })).Ok();
        Assert.Equal([0.0, 1, 4, 9], Values(r.Body.At("gradients", "x")));
    }

    [Fact]
    public async Task ASyntaxError_IsA400_WithTheLineAndACaret()
    {
        var r = await _rest.Post("/v1/gradient", new { program = "def f(a):\n    while b.norm() < 1000:\n        a = a * 2\n    return a", inputs = new { a = 1 } });
        var problem = r.Problem(400, "invalid_graph");
        var detail = problem.Body.GetProperty("detail").GetString()!;
        Assert.Contains("line 2, column 11: name 'b' is not defined", detail);
        Assert.Contains("    while b.norm() < 1000:\n            ^", detail);
    }

    [Fact]
    public async Task InputsAProgramDoesNotRead_AreAccepted_WithZeroGradient_UnlessStrict()
    {
        var r = (await _rest.Post("/v1/gradient", new { program = "y = 2 * x", inputs = new { x = 3, unused = new[] { 1, 2 } } })).Ok();
        Assert.Equal(2.0, One(r.Body.At("gradients", "x")));
        Assert.Equal([0.0, 0], Values(r.Body.At("gradients", "unused")));

        var strict = await _rest.Post("/v1/gradient", new { program = "y = 2 * x", inputs = new { x = 3, unused = 1 }, strict_inputs = true });
        Assert.Contains("no input 'unused'", strict.Problem(400, "invalid_argument").Body.GetProperty("detail").GetString());

        var request = new GradientRequest { Computation = new Computation { Program = "def f(x):\n    return 2 * x" } };
        request.Inputs["x"] = F32Scalar(3);
        request.Inputs["unused"] = F32Scalar(1);
        var g = await _grpc.GradientAsync(request);
        Assert.Equal(0.0, One(g.Gradients["unused"]));
        request.Computation.StrictInputs = true;
        var e = await Assert.ThrowsAsync<global::Grpc.Core.RpcException>(async () => await _grpc.GradientAsync(request));
        Assert.Equal(global::Grpc.Core.StatusCode.InvalidArgument, e.StatusCode);
    }
}
