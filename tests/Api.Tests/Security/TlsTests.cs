using System.Net;
using System.Net.Security;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using AutogradService.Api.Hosting;
using AutogradService.Api.Tests.Infrastructure;
using AutogradService.Contracts.V1;
using Grpc.Net.Client;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.Extensions.DependencyInjection;
using static AutogradService.Api.Tests.Infrastructure.JsonKit;

namespace AutogradService.Api.Tests.Security;

/// <summary>
/// TLS as README and docs/SECURITY.md configure it: a Kestrel endpoint with a certificate file and
/// <c>Http1AndHttp2</c>, so REST (HTTP/1.1 and HTTP/2) and gRPC share one port. The test makes its own self-signed
/// certificate and starts the real service on real sockets; clients trust exactly that certificate.
/// </summary>
public sealed class TlsTests
{
    [Fact]
    public async Task RestAndGrpc_OverTls_OnOnePort_WithAnApiKey()
    {
        var folder = Path.Combine(Path.GetTempPath(), "autograd-api-tests", Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(folder);
        var password = Convert.ToHexString(RandomNumberGenerator.GetBytes(12));
        using var certificate = SelfSigned();
        var pfx = Path.Combine(folder, "server.pfx");
        await File.WriteAllBytesAsync(pfx, certificate.Export(X509ContentType.Pfx, password));

        var settings = new Dictionary<string, string?>(Credentials.Settings(["alice"]))
        {
            ["Kestrel:Endpoints:Tls:Url"] = "https://127.0.0.1:0",
            ["Kestrel:Endpoints:Tls:Protocols"] = "Http1AndHttp2",
            ["Kestrel:Endpoints:Tls:Certificate:Path"] = pfx,
            ["Kestrel:Endpoints:Tls:Certificate:Password"] = password,
            ["Server:RestPort"] = "0",
            ["Server:GrpcPort"] = "0",
            ["Server:ModelRepositoryPath"] = Path.Combine(folder, "models"),
            ["Logging:LogLevel:Default"] = "Warning",
        };
        var builder = WebApplication.CreateBuilder(new WebApplicationOptions
        {
            Args = settings.Select(s => $"--{s.Key}={s.Value}").ToArray(),
            EnvironmentName = "Production",
        });
        builder.AddAutogradService();
        await using var app = builder.Build();
        app.MapAutogradService();
        await app.StartAsync();
        try
        {
            var addresses = app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses;
            var https = new Uri(addresses.Single(a => a.StartsWith("https://", StringComparison.Ordinal)));

            // Trust this certificate and no other (it is self-signed, so no chain would validate it).
            bool Pinned(X509Certificate? presented) => presented is not null && presented.GetCertHashString() == certificate.Thumbprint;
            foreach (var version in new[] { HttpVersion.Version11, HttpVersion.Version20 })
            {
                using var handler = new SocketsHttpHandler { SslOptions = new SslClientAuthenticationOptions { RemoteCertificateValidationCallback = (_, c, _, _) => Pinned(c) } };
                using var client = new HttpClient(handler)
                {
                    BaseAddress = https,
                    DefaultRequestVersion = version,
                    DefaultVersionPolicy = HttpVersionPolicy.RequestVersionExact,
                };
                client.DefaultRequestHeaders.Add("x-api-key", Credentials.KeyOf("alice"));
                using (var health = await client.GetAsync("/healthz"))
                {
                    Assert.Equal(HttpStatusCode.OK, health.StatusCode);
                    Assert.Equal(version, health.Version);
                }
                var reply = (await client.Post("/v1/gradient", new { program = Cases.C1Program, inputs = new { x = Cases.X } })).Ok();
                Assert.Equal([0.0, 4, 8, 12], Values(reply.Body.At("gradients", "x")));
            }

            using var channel = GrpcChannel.ForAddress(https, new GrpcChannelOptions
            {
                HttpHandler = new SocketsHttpHandler { SslOptions = new SslClientAuthenticationOptions { RemoteCertificateValidationCallback = (_, c, _, _) => Pinned(c) } },
            });
            var autodiff = new Autodiff.AutodiffClient(channel);
            var request = new GradientRequest { Computation = new Computation { Program = Cases.C1Program }, Inputs = { ["x"] = Tensors.F32(Cases.X) } };
            var gradient = await autodiff.GradientAsync(request, Credentials.GrpcAs("alice"));
            Assert.Equal([0.0, 4, 8, 12], Tensors.Values(gradient.Gradients["x"]));
            await GrpcErrors.Expect(global::Grpc.Core.StatusCode.Unauthenticated, "unauthenticated", () => autodiff.PingAsync(new PingRequest()).ResponseAsync);

            // A client that does not trust the certificate is refused the connection.
            using var untrusting = new HttpClient { BaseAddress = https };
            await Assert.ThrowsAsync<HttpRequestException>(() => untrusting.GetAsync("/healthz"));
        }
        finally
        {
            await app.StopAsync();
            Directory.Delete(folder, recursive: true);
        }
    }

    /// <summary>A server certificate for localhost and 127.0.0.1, valid for a day.</summary>
    private static X509Certificate2 SelfSigned()
    {
        using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var request = new CertificateRequest("CN=localhost", key, HashAlgorithmName.SHA256);
        var names = new SubjectAlternativeNameBuilder();
        names.AddDnsName("localhost");
        names.AddIpAddress(IPAddress.Loopback);
        request.CertificateExtensions.Add(names.Build());
        request.CertificateExtensions.Add(new X509BasicConstraintsExtension(false, false, 0, false));
        request.CertificateExtensions.Add(new X509KeyUsageExtension(X509KeyUsageFlags.DigitalSignature, false));
        request.CertificateExtensions.Add(new X509EnhancedKeyUsageExtension([new System.Security.Cryptography.Oid("1.3.6.1.5.5.7.3.1")], false));
        return request.CreateSelfSigned(DateTimeOffset.UtcNow.AddMinutes(-5), DateTimeOffset.UtcNow.AddDays(1));
    }
}
