using System.Net.Sockets;
using System.Text;
using Xunit.Abstractions;

namespace AutogradService.Interop.Tests;

/// <summary>
/// A body over Limits:MaxRequestBodyBytes sent by a client that writes it whole before reading (no
/// <c>Expect: 100-continue</c>): the client still reads a 413 problem with <c>Connection: close</c>, instead of a
/// broken pipe or a reset. The body is several times the loopback socket buffers, so a server that closed without
/// reading it would fail the client's write.
/// </summary>
public sealed class OversizeBodyTests(ITestOutputHelper output)
{
    private const int Limit = 4 << 20;
    private const int BodyBytes = Limit * 2 - 4096; // over the limit, within what the server reads to discard

    private static Task<ServerProcess> StartAsync() =>
        ServerProcess.StartAsync(new Dictionary<string, string> { ["Limits__MaxRequestBodyBytes"] = Limit.ToString(System.Globalization.CultureInfo.InvariantCulture) });

    private static byte[] Body()
    {
        var json = "{\"program\": \"y = x\", \"inputs\": {\"x\": 1}}";
        return Encoding.ASCII.GetBytes(json + new string(' ', BodyBytes - json.Length));
    }

    [Fact]
    public async Task RawSocketClient_WritingTheWholeBody_Reads413()
    {
        using var server = await StartAsync();
        using var socket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        await socket.ConnectAsync(System.Net.IPAddress.Loopback, server.RestPort);
        using var stream = new NetworkStream(socket, ownsSocket: false);
        var body = Body();
        var head = $"POST /v1/evaluate HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: {body.Length}\r\n\r\n";
        // Everything is written before anything is read, as urllib and curl without Expect do.
        await stream.WriteAsync(Encoding.ASCII.GetBytes(head));
        await stream.WriteAsync(body);
        await stream.FlushAsync();

        using var reader = new StreamReader(stream, Encoding.UTF8);
        var response = await reader.ReadToEndAsync().WaitAsync(TimeSpan.FromSeconds(60)); // Connection: close ends it
        output.WriteLine(response);
        Assert.StartsWith("HTTP/1.1 413", response);
        Assert.Contains("Connection: close", response, StringComparison.OrdinalIgnoreCase);
        Assert.Contains("application/problem+json", response);
        Assert.Contains("\"code\":\"request_too_large\"", response);
        Assert.Contains($"\"limit_bytes\":{Limit}", response);
    }

    [Fact]
    public async Task PythonUrllib_Reads413()
    {
        if (!Prerequisites.Available(File.Exists(Prerequisites.Python) ? null : $"{Prerequisites.Python} is not installed", output)) return;
        using var server = await StartAsync();
        const string client = """
            import json, sys, urllib.request, urllib.error
            body = b'{"program": "y = x", "inputs": {"x": 1}}'
            body += b' ' * (int(sys.argv[2]) - len(body))
            request = urllib.request.Request(sys.argv[1], data=body, method='POST', headers={'Content-Type': 'application/json'})
            try:
                urllib.request.urlopen(request, timeout=60)
                sys.exit('expected 413, got a success')
            except urllib.error.HTTPError as e:
                problem = json.loads(e.read())
                print(e.code, problem['code'], problem['detail'])
                sys.exit(0 if e.code == 413 and problem['code'] == 'request_too_large' else 1)
            """;
        var (exitCode, text) = await ChildProcess.RunAsync(Prerequisites.Python, ["-c", client, $"{server.RestBase}/v1/evaluate", BodyBytes.ToString(System.Globalization.CultureInfo.InvariantCulture)],
            Prerequisites.InteropDir, TimeSpan.FromSeconds(90));
        output.WriteLine(text);
        Assert.True(exitCode == 0, $"urllib did not read the 413 (exit {exitCode?.ToString() ?? "timeout"}):\n{text}\n--- server ---\n{server.Tail()}");
    }
}
