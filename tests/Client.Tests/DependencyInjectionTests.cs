using AutogradService.Contracts.V1;
using Microsoft.Extensions.DependencyInjection;

namespace AutogradService.Client.Tests;

/// <summary>AddAutogradClient: the client from a service provider, over the factories' HTTP clients.</summary>
public sealed class DependencyInjectionTests(TestService service) : IClassFixture<TestService>
{
    private ServiceProvider Provider(Action<AutogradClientOptions> configure)
    {
        var services = new ServiceCollection();
        services.AddAutogradClient(configure)
            .ConfigureHttpClients(b => b.ConfigurePrimaryHttpMessageHandler(() => service.Server.CreateHandler()));
        return services.BuildServiceProvider();
    }

    [Theory]
    [InlineData(AutogradTransport.Grpc, "grpc")]
    [InlineData(AutogradTransport.Rest, "rest")]
    [InlineData(AutogradTransport.Auto, "grpc")]
    public async Task The_registered_client_computes_C1(AutogradTransport transport, string expected)
    {
        using var provider = Provider(o =>
        {
            o.GrpcAddress = service.Server.BaseAddress;
            o.RestAddress = service.Server.BaseAddress;
            o.Transport = transport;
        });
        var client = provider.GetRequiredService<AutogradClient>();
        Assert.Equal(expected, client.Transport);
        var r = await client.GradientAsync(AutogradClient.Program("y = 2 * dot(x, x)"),
            new Dictionary<string, Tensor> { ["x"] = Tensors.From([0f, 1, 2, 3]) }, "x");
        Assert.Equal([0f, 4, 8, 12], r.Gradients["x"].ToFloatArray());
        await using var session = client.OpenSession();
        session.Variable("a", Tensors.Scalar(0.5f));
        session.Apply("mul", "b", "a", "4");
        session.Backward("b");
        Assert.Equal(4, (await session.GradAsync("a")).ToScalar());
    }

    [Fact]
    public void Only_a_REST_address_means_REST()
    {
        using var provider = Provider(o => o.RestAddress = service.Server.BaseAddress);
        Assert.Equal("rest", provider.GetRequiredService<AutogradClient>().Transport);
    }

    [Fact]
    public void No_address_is_refused_when_the_client_is_made()
    {
        using var provider = Provider(_ => { });
        var e = Assert.ThrowsAny<Microsoft.Extensions.Options.OptionsValidationException>(() => provider.GetRequiredService<AutogradClient>());
        Assert.Contains("GrpcAddress or a RestAddress", e.Message);
    }
}
