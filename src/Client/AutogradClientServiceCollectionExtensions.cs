using AutogradService.Contracts.V1;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Options;

namespace AutogradService.Client;

public enum AutogradTransport
{
    /// <summary>
    /// gRPC when <see cref="AutogradClientOptions.GrpcAddress"/> is set, else REST; with both addresses, gRPC falling
    /// back to REST when gRPC cannot be reached.
    /// </summary>
    Auto,
    Grpc,
    Rest,
}

public sealed class AutogradClientOptions
{
    /// <summary>The service's gRPC address (h2c or TLS), e.g. http://host:8081.</summary>
    public Uri? GrpcAddress { get; set; }

    /// <summary>The service's REST address, e.g. http://host:8080.</summary>
    public Uri? RestAddress { get; set; }

    public AutogradTransport Transport { get; set; } = AutogradTransport.Auto;

    /// <summary>Each gRPC call's deadline (REST uses the HttpClient's Timeout).</summary>
    public TimeSpan? Timeout { get; set; }

    /// <summary>Sent as <c>x-api-key</c> on every call when the service requires identities.</summary>
    public string? ApiKey { get; set; }
}

/// <summary>What <see cref="AutogradClientServiceCollectionExtensions.AddAutogradClient"/> registered, to configure further.</summary>
public sealed class AutogradClientBuilder(IServiceCollection services, IReadOnlyList<IHttpClientBuilder> httpClients)
{
    public IServiceCollection Services { get; } = services;

    /// <summary>The named HTTP clients behind the client: the three gRPC clients and the REST one.</summary>
    public IReadOnlyList<IHttpClientBuilder> HttpClients { get; } = httpClients;

    /// <summary>Applies one configuration to every HTTP client behind the client (handlers, resilience, a test server's handler).</summary>
    public AutogradClientBuilder ConfigureHttpClients(Action<IHttpClientBuilder> configure)
    {
        foreach (var b in HttpClients) configure(b);
        return this;
    }
}

public static class AutogradClientServiceCollectionExtensions
{
    /// <summary>The HttpClient name of the REST transport (IHttpClientFactory).</summary>
    public const string RestClientName = "AutogradService.Rest";

    /// <summary>
    /// Registers <see cref="AutogradClient"/> (transient, cheap: the connections belong to the factories) on top of
    /// <c>AddGrpcClient</c> (GrpcClientFactory) for the Autodiff, Sessions and Models clients and
    /// <c>AddHttpClient</c> (IHttpClientFactory) for REST, so handler lifetimes, logging and resilience follow those
    /// conventions.
    /// </summary>
    public static AutogradClientBuilder AddAutogradClient(this IServiceCollection services, Action<AutogradClientOptions> configure)
    {
        services.AddOptions<AutogradClientOptions>().Configure(configure).Validate(o => o.GrpcAddress is not null || o.RestAddress is not null,
            "AutogradClientOptions needs a GrpcAddress or a RestAddress");
        services.AddTransient<ApiKeyHandler>();

        IHttpClientBuilder Grpc<T>() where T : class =>
            services.AddGrpcClient<T>((sp, o) =>
            {
                var options = sp.GetRequiredService<IOptions<AutogradClientOptions>>().Value;
                o.Address = options.GrpcAddress ?? options.RestAddress;
                o.ChannelOptionsActions.Add(c =>
                {
                    c.MaxReceiveMessageSize = null;
                    c.MaxSendMessageSize = null;
                });
            }).AddHttpMessageHandler<ApiKeyHandler>();

        var builders = new List<IHttpClientBuilder>
        {
            Grpc<Autodiff.AutodiffClient>(),
            Grpc<Sessions.SessionsClient>(),
            Grpc<Models.ModelsClient>(),
            services.AddHttpClient(RestClientName, (sp, http) =>
            {
                var options = sp.GetRequiredService<IOptions<AutogradClientOptions>>().Value;
                var address = options.RestAddress ?? options.GrpcAddress!;
                http.BaseAddress = address.AbsoluteUri.EndsWith('/') ? address : new Uri(address.AbsoluteUri + "/");
            }).AddHttpMessageHandler<ApiKeyHandler>(),
        };

        services.AddTransient(sp =>
        {
            var options = sp.GetRequiredService<IOptions<AutogradClientOptions>>().Value;
            var grpc = options.Transport == AutogradTransport.Grpc || (options.Transport == AutogradTransport.Auto && options.GrpcAddress is not null);
            if (!grpc) return new AutogradClient(sp.GetRequiredService<IHttpClientFactory>().CreateClient(RestClientName));
            var (autodiff, sessions, models) = (sp.GetRequiredService<Autodiff.AutodiffClient>(), sp.GetRequiredService<Sessions.SessionsClient>(),
                sp.GetRequiredService<Models.ModelsClient>());
            return options.Transport == AutogradTransport.Auto && options.RestAddress is not null
                ? new AutogradClient(autodiff, sessions, models, sp.GetRequiredService<IHttpClientFactory>().CreateClient(RestClientName), options.Timeout)
                : new AutogradClient(autodiff, sessions, models, options.Timeout);
        });
        return new AutogradClientBuilder(services, builders);
    }

    /// <summary>Adds the API key to every request (gRPC calls are HTTP requests too), when one is configured.</summary>
    private sealed class ApiKeyHandler(IOptions<AutogradClientOptions> options) : DelegatingHandler
    {
        protected override Task<HttpResponseMessage> SendAsync(HttpRequestMessage request, CancellationToken ct)
        {
            if (options.Value.ApiKey is { Length: > 0 } key && !request.Headers.Contains("x-api-key"))
                request.Headers.Add("x-api-key", key);
            return base.SendAsync(request, ct);
        }
    }
}
