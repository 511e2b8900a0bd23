using AutogradService.Contracts.V1;
using Grpc.Net.Client;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Mvc.Testing;

namespace AutogradService.Api.Tests.Infrastructure;

/// <summary>
/// The service in-process over TestServer. Settings travel as host settings (UseSetting), which the minimal host sees
/// while Program.cs still builds, so the Limits read eagerly at start-up see them too. Each factory gets its own
/// model repository in a temp folder unless one is given (to restart a host over the same folder).
/// Kestrel's ports are ignored here: REST goes through <see cref="WebApplicationFactory{T}.CreateClient()"/>, gRPC
/// through <see cref="Channel"/> over the TestServer handler.
/// </summary>
public class ServiceFactory : WebApplicationFactory<Program>
{
    private readonly Dictionary<string, string?> _settings;
    private readonly bool _ownsModels;
    private GrpcChannel? _channel;

    public ServiceFactory(IReadOnlyDictionary<string, string?>? settings = null, string? modelsPath = null)
    {
        ModelsPath = modelsPath ?? Path.Combine(Path.GetTempPath(), "autograd-api-tests", Guid.NewGuid().ToString("N"));
        _ownsModels = modelsPath is null;
        _settings = new Dictionary<string, string?>(StringComparer.Ordinal)
        {
            ["Server:ModelRepositoryPath"] = ModelsPath,
            ["Logging:LogLevel:Default"] = "Warning",
            ["Logging:LogLevel:Microsoft.AspNetCore"] = "Error",
        };
        foreach (var (k, v) in settings ?? new Dictionary<string, string?>()) _settings[k] = v;
    }

    public string ModelsPath { get; }

    protected override void ConfigureWebHost(IWebHostBuilder builder)
    {
        // As deployed (dotnet run without a launch profile): no developer exception page.
        builder.UseEnvironment("Production");
        foreach (var (key, value) in _settings) builder.UseSetting(key, value);
    }

    /// <summary>gRPC over the in-memory TestServer handler (HTTP/2 semantics, no socket).</summary>
    public GrpcChannel Channel => _channel ??= GrpcChannel.ForAddress(Server.BaseAddress, new GrpcChannelOptions
    {
        HttpHandler = Server.CreateHandler(),
        MaxReceiveMessageSize = null,
        MaxSendMessageSize = null,
    });

    public Autodiff.AutodiffClient Autodiff => new(Channel);

    public Contracts.V1.Sessions.SessionsClient Sessions => new(Channel);

    public Contracts.V1.Models.ModelsClient Models => new(Channel);

    public T Get<T>() where T : notnull => (T)Services.GetService(typeof(T))!;

    protected override void Dispose(bool disposing)
    {
        _channel?.Dispose();
        _channel = null;
        base.Dispose(disposing);
        if (disposing && _ownsModels && Directory.Exists(ModelsPath))
        {
            try
            {
                Directory.Delete(ModelsPath, recursive: true);
            }
            catch (IOException)
            {
                // A temp folder left behind is harmless.
            }
        }
    }
}

/// <summary>The server's defaults (appsettings.json) with a private model folder.</summary>
public sealed class DefaultService : ServiceFactory;

/// <summary>Runs the classes that read process-wide state (the shared buffer pool) alone, after the parallel ones.</summary>
[CollectionDefinition(Name, DisableParallelization = true)]
public sealed class SerialCollection
{
    public const string Name = "serial";
}
