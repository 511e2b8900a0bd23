using AutogradService.Client;
using Grpc.Net.Client;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Mvc.Testing;

namespace AutogradService.Client.Tests;

/// <summary>
/// The service in-process over TestServer, with its own model folder: REST through the TestServer's HttpClient, gRPC
/// through a channel over its handler (HTTP/2 semantics, no socket). One per test class.
/// </summary>
public sealed class TestService : WebApplicationFactory<Program>
{
    private readonly string _models = Path.Combine(Path.GetTempPath(), "autograd-client-tests", Guid.NewGuid().ToString("N"));
    private GrpcChannel? _channel;

    protected override void ConfigureWebHost(IWebHostBuilder builder)
    {
        builder.UseEnvironment("Production");
        builder.UseSetting("Server:ModelRepositoryPath", _models);
        builder.UseSetting("Logging:LogLevel:Default", "Warning");
        builder.UseSetting("Logging:LogLevel:Microsoft.AspNetCore", "Error");
    }

    public GrpcChannel Channel => _channel ??= GrpcChannel.ForAddress(Server.BaseAddress, new GrpcChannelOptions
    {
        HttpHandler = Server.CreateHandler(),
        MaxReceiveMessageSize = null,
        MaxSendMessageSize = null,
    });

    public AutogradClient Grpc() => AutogradClient.ForGrpc(Channel, TimeSpan.FromSeconds(60));

    public AutogradClient Rest() => new(CreateClient());

    protected override void Dispose(bool disposing)
    {
        _channel?.Dispose();
        _channel = null;
        base.Dispose(disposing);
        if (disposing && Directory.Exists(_models))
        {
            try
            {
                Directory.Delete(_models, recursive: true);
            }
            catch (IOException)
            {
                // A temp folder left behind is harmless.
            }
        }
    }
}
