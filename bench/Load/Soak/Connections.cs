using System.Net;
using AutogradService.Contracts.V1;
using Grpc.Net.Client;

namespace AutogradService.Load.Soak;

/// <summary>
/// The connections every client shares (REST over HTTP/1.1, gRPC over h2c, raw HTTP/2 for hand-made gRPC frames),
/// one client's random source, and helpers that turn an answer into its contract code.
/// </summary>
public sealed class Connections : IDisposable
{
    public Connections(Uri rest, Uri grpc)
    {
        Grpc = grpc;
        Rest = new HttpClient(new SocketsHttpHandler { MaxConnectionsPerServer = 256, UseProxy = false, PooledConnectionLifetime = TimeSpan.FromMinutes(5) })
        {
            BaseAddress = rest,
            Timeout = TimeSpan.FromSeconds(60),
        };
        Channel = GrpcChannel.ForAddress(grpc, new GrpcChannelOptions
        {
            HttpHandler = new SocketsHttpHandler { EnableMultipleHttp2Connections = true, UseProxy = false },
            MaxReceiveMessageSize = 64 << 20,
        });
        RawH2 = new HttpClient(new SocketsHttpHandler { EnableMultipleHttp2Connections = true, UseProxy = false })
        {
            BaseAddress = grpc,
            Timeout = TimeSpan.FromSeconds(60),
        };
        Autodiff = new Autodiff.AutodiffClient(Channel);
        Sessions = new Sessions.SessionsClient(Channel);
        Models = new Models.ModelsClient(Channel);
    }

    public Uri Grpc { get; }
    public HttpClient Rest { get; }
    public GrpcChannel Channel { get; }
    public HttpClient RawH2 { get; }
    public Autodiff.AutodiffClient Autodiff { get; }
    public Sessions.SessionsClient Sessions { get; }
    public Models.ModelsClient Models { get; }

    public void Dispose()
    {
        Rest.Dispose();
        RawH2.Dispose();
        Channel.Dispose();
    }
}
