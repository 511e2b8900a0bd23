using System.Net;
using System.Net.Sockets;
using AutogradService.Contracts.V1;
using Grpc.Net.Client;

namespace AutogradService.Client.Tests;

/// <summary>A service that is not there fails with the same exception type as the service's own refusals.</summary>
public sealed class UnreachableServiceTests
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
}
