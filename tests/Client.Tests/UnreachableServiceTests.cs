using System.Net;
using System.Net.Sockets;
using AutogradService.Contracts.V1;
using Grpc.Net.Client;

namespace AutogradService.Client.Tests;

/// <summary>A service that is not there fails with the same exception type as the service's own refusals.</summary>
public sealed class UnreachableServiceTests(TestService service) : IClassFixture<TestService>
{
    private static Uri NothingListening()
    {
        var probe = new TcpListener(IPAddress.Loopback, 0);
        probe.Start();
        int port = ((IPEndPoint)probe.LocalEndpoint).Port;
        probe.Stop();
        return new Uri($"http://127.0.0.1:{port}/");
    }

    [Fact]
    public async Task Over_REST_and_over_gRPC_it_is_unavailable()
    {
        var address = NothingListening();
        using var http = new HttpClient(new SocketsHttpHandler { UseProxy = false }) { BaseAddress = address };
        using var channel = GrpcChannel.ForAddress(address, new GrpcChannelOptions { HttpHandler = new SocketsHttpHandler { UseProxy = false } });
        foreach (var client in new[] { new AutogradClient(http), AutogradClient.ForGrpc(channel, TimeSpan.FromSeconds(10)) })
        {
            var inputs = new Dictionary<string, Tensor> { ["x"] = Tensors.Scalar(1f) };
            var e = await Assert.ThrowsAsync<AutogradException>(() => client.EvaluateAsync(AutogradClient.Program("y = x"), inputs));
            Assert.Equal("unavailable", e.Code);
        }
    }

    [Fact]
    public async Task With_a_REST_fallback_an_unreachable_gRPC_moves_calls_and_new_sessions_to_REST()
    {
        using var channel = GrpcChannel.ForAddress(NothingListening(), new GrpcChannelOptions { HttpHandler = new SocketsHttpHandler { UseProxy = false } });
        var client = new AutogradClient(new Autodiff.AutodiffClient(channel), new Sessions.SessionsClient(channel), new Models.ModelsClient(channel),
            service.CreateClient(), TimeSpan.FromSeconds(10));
        Assert.Equal("grpc", client.Transport);
        await using (var session = client.OpenSession()) // opened while gRPC was still the choice: its first batch moves
        {
            session.Variable("a", Tensors.Scalar(0.5f));
            session.Apply("mul", "b", "a", "4");
            session.Backward("b");
            Assert.Equal(4, (await session.GradAsync("a")).ToScalar());
        }
        Assert.Equal("rest", client.Transport);
        var r = await client.GradientAsync(AutogradClient.Program("y = 2 * dot(x, x)"),
            new Dictionary<string, Tensor> { ["x"] = Tensors.From([0f, 1, 2, 3]) }, "x");
        Assert.Equal([0f, 4, 8, 12], r.Gradients["x"].ToFloatArray());
        var streamed = new List<StreamedTensor>();
        var request = new GradientRequest { Computation = AutogradClient.Program("y = sum(x * x)"), Inputs = { ["x"] = Tensors.From([1.0, 2]) }, Wrt = { "x" } };
        await foreach (var t in client.StreamGradientAsync(request)) streamed.Add(t);
        Assert.Equal([2.0, 4], streamed.Single(t => t.Role == "gradient").Value.ToDoubleArray());
    }

    [Fact]
    public async Task Without_one_the_gRPC_failure_is_the_answer()
    {
        using var channel = GrpcChannel.ForAddress(NothingListening(), new GrpcChannelOptions { HttpHandler = new SocketsHttpHandler { UseProxy = false } });
        await using var session = AutogradClient.ForGrpc(channel).OpenSession();
        session.Variable("a", Tensors.Scalar(0.5f));
        Assert.Equal("unavailable", (await Assert.ThrowsAsync<AutogradException>(() => session.FetchAsync("a"))).Code);
    }
}
