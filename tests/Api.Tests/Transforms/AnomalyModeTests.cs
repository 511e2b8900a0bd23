using AutogradService.Api.Tests.Infrastructure;
using AutogradService.Api.Tests.Sessions;
using AutogradService.Contracts.V1;
using Grpc.Core;
using static AutogradService.Api.Tests.Infrastructure.JsonKit;

namespace AutogradService.Api.Tests.Transforms;

/// <summary><c>detect_anomaly</c> over REST, gRPC and sessions: the first op producing NaN/Inf, its pass and node, as 422 numerical_anomaly.</summary>
public sealed class AnomalyModeTests(DefaultService service) : IClassFixture<DefaultService>
{
    private readonly HttpClient _client = service.CreateClient();

    [Fact]
    public async Task Rest_BackwardInfinity_IsReported_OnlyWhenAsked()
    {
        var body = new Dictionary<string, object> { ["program"] = "r = sqrt(x)\ny = sum(r)", ["inputs"] = new { x = new[] { 0, 4 } }, ["wrt"] = new[] { "x" } };
        var plain = (await _client.Post("/v1/gradient", body)).Ok();
        Assert.Equal("Infinity", plain.Body.At("gradients", "x").GetProperty("data")[0].GetString());

        body["detect_anomaly"] = true;
        var r = (await _client.Post("/v1/gradient", body)).Problem(422, "numerical_anomaly");
        Assert.Equal("sqrt", r.Str("op"));
        Assert.Equal("r", r.Str("node"));
        Assert.Equal("backward", r.Str("pass"));
    }

    [Fact]
    public async Task Grpc_ForwardNaN_NamesTheNode()
    {
        var request = new EvaluateRequest { Computation = new Computation { Program = "a = x - 2\nb = log(a)\ny = b * 2" }, DetectAnomaly = true };
        request.Inputs["x"] = Tensors.F32([1, 3], 2);
        var e = await GrpcErrors.Expect(StatusCode.InvalidArgument, "numerical_anomaly", () => service.Autodiff.EvaluateAsync(request).ResponseAsync);
        var info = e.GetRpcStatus()!.GetDetail<Google.Rpc.ErrorInfo>()!;
        Assert.Equal("log", info.Metadata["op"]);
        Assert.Equal("forward", info.Metadata["pass"]);
        Assert.Equal("NaN", info.Metadata["value"]);
    }

    [Fact]
    public async Task Session_CommandThatProducesNaN_FailsAlone()
    {
        using var session = await GrpcSession.OpenAsync(service.Sessions, new SessionOptions { DetectAnomaly = true });
        await session.Do(GrpcSession.Variable("x", Tensors.F32([-1, 1], 2)));
        var reply = await session.SendAsync(new Command { Apply = new ApplyCommand { Program = "y = sqrt(x)" } });
        Assert.Equal("numerical_anomaly", reply.Error?.Code);
        double[] x = await session.FetchAsync("x");
        Assert.Equal(new[] { -1.0, 1.0 }, x);
    }
}
