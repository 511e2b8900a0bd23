using System.Net;
using AutogradService.Api.Options;

namespace AutogradService.Api.Hosting;

/// <summary>
/// <c>dotnet AutogradService.Api.dll --healthcheck</c>: asks the running service's <c>/healthz</c> on the REST port the
/// same configuration names (appsettings, environment, command line) and exits 0 when it answers 2xx, 1 otherwise.
/// A container's HEALTHCHECK uses it because the .NET runtime images ship no curl or wget.
/// </summary>
public static class HealthProbe
{
    public const string Flag = "--healthcheck";

    public static async Task<int> RunAsync(string[] args)
    {
        var config = new ConfigurationBuilder()
            .SetBasePath(AppContext.BaseDirectory)
            .AddJsonFile("appsettings.json", optional: true)
            .AddEnvironmentVariables()
            .AddCommandLine(args)
            .Build();
        var server = config.GetSection(ServerOptions.Section).Get<ServerOptions>() ?? new ServerOptions();
        var address = IPAddress.Parse(server.BindAddress);
        // A wildcard bind answers on loopback.
        if (address.Equals(IPAddress.Any)) address = IPAddress.Loopback;
        else if (address.Equals(IPAddress.IPv6Any)) address = IPAddress.IPv6Loopback;
        var url = new UriBuilder("http", address.ToString(), server.RestPort, "/healthz").Uri;
        using var http = new HttpClient { Timeout = TimeSpan.FromSeconds(3) };
        try
        {
            using var response = await http.GetAsync(url);
            Console.WriteLine($"{url}: {(int)response.StatusCode}");
            return response.IsSuccessStatusCode ? 0 : 1;
        }
        catch (Exception e) when (e is HttpRequestException or TaskCanceledException)
        {
            Console.WriteLine($"{url}: {e.Message}");
            return 1;
        }
    }
}
