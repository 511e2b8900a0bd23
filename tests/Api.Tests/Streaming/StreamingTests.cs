using System.Net.Http.Headers;
using System.Runtime.InteropServices;
using System.Text;
using System.Text.Json;
using AutogradService.Api.Tests.Infrastructure;
using AutogradService.Contracts.V1;
using Grpc.Core;
using static AutogradService.Api.Tests.Infrastructure.JsonKit;

namespace AutogradService.Api.Tests.Streaming;

/// <summary>Limits raised for 16 MiB tensors (4,194,304 float32) in and out, whatever appsettings.json says.</summary>
public sealed class BigTensorService() : ServiceFactory(new Dictionary<string, string?>
{
    ["Limits:MaxRequestBodyBytes"] = (128L << 20).ToString(),
    ["Limits:MaxTensorElements"] = (8L << 20).ToString(),
    ["Limits:MemoryBytesPerRequest"] = (512L << 20).ToString(),
});

/// <summary>
/// Streaming gradients (NDJSON and gRPC GradientStream): outputs come after the forward pass and before any gradient,
/// stats close the stream, and a tensor over 1 MiB arrives in chunks of at most 1 MiB that reassemble bit-exactly.
/// </summary>
public sealed class StreamingTests(BigTensorService service) : IClassFixture<BigTensorService>
{
    private const int Elements = 4_194_304; // 16 MiB of float32
    private const int MiB = 1 << 20;

    private readonly HttpClient _client = service.CreateClient();

    private static float[] BigX()
    {
        var random = new Random(12345);
        var x = new float[Elements];
        for (int i = 0; i < x.Length; i++) x[i] = (float)(random.NextDouble() * 2000 - 1000);
        x[7] = float.Epsilon;   // subnormal
        x[8] = -0.0f;
        x[9] = 3.4028235e37f;  // still finite when doubled
        return x;
    }

    /// <summary>Sends a gradient request asking for NDJSON and returns each line as it arrives, parsed.</summary>
    private async IAsyncEnumerable<JsonElement> NdJsonAsync(object body)
    {
        using var request = new HttpRequestMessage(HttpMethod.Post, "/v1/gradient")
        {
            Content = new StringContent(Serialize(body), Encoding.UTF8, "application/json"),
        };
        request.Headers.Accept.Add(new MediaTypeWithQualityHeaderValue("application/x-ndjson"));
        using var response = await _client.SendAsync(request, HttpCompletionOption.ResponseHeadersRead);
        Assert.True(response.IsSuccessStatusCode, await response.Content.ReadAsStringAsync());
        Assert.Equal("application/x-ndjson", response.Content.Headers.ContentType?.MediaType);
        using var reader = new StreamReader(await response.Content.ReadAsStreamAsync());
        while (await reader.ReadLineAsync() is { } line)
        {
            if (line.Length == 0) continue;
            using var doc = JsonDocument.Parse(line);
            yield return doc.RootElement.Clone();
        }
    }

    [Fact]
    public async Task NdJson_C1_OutputThenGradientThenStats()
    {
        var lines = new List<JsonElement>();
        await foreach (var line in NdJsonAsync(new { program = Cases.C1Program, inputs = new { x = Cases.X } })) lines.Add(line);
        Assert.Equal(3, lines.Count);
        Assert.Equal(("y", "output"), (lines[0].GetProperty("name").GetString(), lines[0].GetProperty("role").GetString()));
        Assert.Equal(28.0, Values(lines[0]).Single());
        Assert.True(lines[0].GetProperty("last").GetBoolean());
        Assert.Equal(0, lines[0].GetProperty("offset").GetInt32());
        Assert.Equal(("x", "gradient"), (lines[1].GetProperty("name").GetString(), lines[1].GetProperty("role").GetString()));
        Assert.Equal([0.0, 4, 8, 12], Values(lines[1]));
        Assert.Equal([4], Shape(lines[1]));
        Assert.True(lines[2].TryGetProperty("stats", out var stats));
        Assert.True(stats.GetProperty("nodes_executed").GetInt64() >= 2);
    }

    [Fact]
    public async Task NdJson_SeveralOutputsAndGradients_AllOutputsFirst()
    {
        var lines = new List<JsonElement>();
        await foreach (var line in NdJsonAsync(new
        {
            program = "p = x * y\nq = sum(p) + sum(y)", outputs = new[] { "p", "q" }, inputs = new { x = new[] { 1, 2 }, y = new[] { 3, 4 } },
        })) lines.Add(line);
        var roles = lines.Select(l => l.TryGetProperty("role", out var r) ? r.GetString()! : "stats").ToArray();
        Assert.Equal(["output", "output", "gradient", "gradient", "stats"], roles);
        var grads = lines.Where(l => l.TryGetProperty("role", out var r) && r.GetString() == "gradient").ToDictionary(l => l.GetProperty("name").GetString()!, Values);
        Assert.Equal([2.0 * 3, 2 * 4], grads["x"]);        // d(sum p + q)/dx = 2y
        Assert.Equal([2.0 * 1 + 1, 2 * 2 + 1], grads["y"]); // 2x + 1
    }

    [Fact]
    public async Task NdJson_AnErrorBeforeAnyResult_IsProblemDetails()
    {
        var r = await _client.Post("/v1/gradient", new { program = "y = frobnicate(x)", inputs = new { x = 1 } }, accept: "application/x-ndjson");
        r.Problem(400, "invalid_graph");
    }

    [Fact]
    public async Task NdJson_16MiBTensor_ReassemblesBitExactlyFromChunksOfAtMost1MiB()
    {
        var x = BigX();
        var b64 = Convert.ToBase64String(MemoryMarshal.AsBytes(x.AsSpan()));
        var y = new float[Elements];
        var grad = new float[Elements];
        var seen = new List<string>();
        var next = new Dictionary<string, long>();
        bool stats = false;
        await foreach (var line in NdJsonAsync(new { program = "y = x * 2", inputs = new { x = new { dtype = "float32", shape = new[] { Elements }, b64 } } }))
        {
            Assert.False(stats, "nothing may follow the stats line");
            if (line.TryGetProperty("stats", out _))
            {
                stats = true;
                continue;
            }
            var name = line.GetProperty("name").GetString()!;
            var role = line.GetProperty("role").GetString()!;
            Assert.Equal([Elements], Shape(line));
            Assert.Equal("float32", DType(line));
            long offset = line.GetProperty("offset").GetInt64();
            Assert.Equal(next.GetValueOrDefault(name), offset);   // chunks arrive in order, without gaps
            var data = line.GetProperty("data");
            int count = data.GetArrayLength();
            Assert.InRange(count * sizeof(float), 1, MiB);
            var target = role == "output" ? y : grad;
            int i = (int)offset;
            foreach (var e in data.EnumerateArray()) target[i++] = e.GetSingle();
            next[name] = offset + count;
            Assert.Equal(next[name] == Elements, line.GetProperty("last").GetBoolean());
            if (seen.Count == 0 || seen[^1] != $"{role}:{name}") seen.Add($"{role}:{name}");
        }
        Assert.True(stats);
        Assert.Equal(["output:y", "gradient:x"], seen); // the output completes before the gradient begins
        Assert.Equal(Elements, next["y"]);
        Assert.Equal(Elements, next["x"]);
        for (int i = 0; i < Elements; i++)
        {
            if (BitConverter.SingleToInt32Bits(y[i]) != BitConverter.SingleToInt32Bits(x[i] * 2f)) Assert.Fail($"y[{i}] = {y[i]:R}, expected {x[i] * 2f:R}");
            if (grad[i] != 2f) Assert.Fail($"grad[{i}] = {grad[i]:R}");
        }
    }

    [Fact]
    public async Task Grpc_16MiBTensor_ReassemblesBitExactlyFromChunksOfAtMost1MiB()
    {
        var x = BigX();
        var request = new GradientRequest { Computation = new Computation { Program = "y = x * 2" } };
        request.Inputs["x"] = Tensors.F32Raw(x);
        var expectedY = MemoryMarshal.AsBytes(x.Select(v => v * 2f).ToArray().AsSpan()).ToArray();
        var expectedGrad = MemoryMarshal.AsBytes(Enumerable.Repeat(2f, Elements).ToArray().AsSpan()).ToArray();
        var buffers = new Dictionary<string, byte[]>();
        var next = new Dictionary<string, long>();
        var order = new List<string>();
        bool stats = false;
        using var call = service.Autodiff.GradientStream(request);
        await foreach (var message in call.ResponseStream.ReadAllAsync())
        {
            Assert.False(stats, "nothing may follow the stats message");
            if (message.KindCase == ResultChunk.KindOneofCase.Stats)
            {
                stats = true;
                Assert.True(message.Stats.NodesExecuted >= 1);
                continue;
            }
            var chunk = message.Tensor;
            Assert.Equal(Contracts.V1.DType.Float32, chunk.Dtype);
            Assert.InRange(chunk.Data.Length, 1, MiB);
            Assert.Equal(next.GetValueOrDefault(chunk.Name), chunk.Offset);
            if (chunk.Offset == 0) Assert.Equal([(long)Elements], chunk.Shape); // the first chunk carries the shape
            var buffer = buffers.TryGetValue(chunk.Name, out var b) ? b : buffers[chunk.Name] = new byte[Elements * sizeof(float)];
            chunk.Data.Span.CopyTo(buffer.AsSpan((int)chunk.Offset * sizeof(float)));
            next[chunk.Name] = chunk.Offset + chunk.Data.Length / sizeof(float);
            Assert.Equal(next[chunk.Name] == Elements, chunk.Last);
            var key = $"{chunk.Role}:{chunk.Name}";
            if (order.Count == 0 || order[^1] != key) order.Add(key);
        }
        Assert.True(stats);
        Assert.Equal(["output:y", "gradient:x"], order);
        Assert.True(expectedY.AsSpan().SequenceEqual(buffers["y"]), "y differs from x * 2");
        Assert.True(expectedGrad.AsSpan().SequenceEqual(buffers["x"]), "the gradient differs from 2");
    }

    [Fact]
    public async Task Grpc_C1Stream_AndAnErrorAsAStatus()
    {
        var request = new GradientRequest { Computation = new Computation { Program = Cases.C1Program } };
        request.Inputs["x"] = Tensors.F32(Cases.X);
        using (var call = service.Autodiff.GradientStream(request))
        {
            var messages = await call.ResponseStream.ReadAllAsync().ToListAsync();
            Assert.Equal(3, messages.Count);
            Assert.Equal(("y", "output"), (messages[0].Tensor.Name, messages[0].Tensor.Role));
            Assert.Equal(28f, MemoryMarshal.Cast<byte, float>(messages[0].Tensor.Data.Span)[0]);
            Assert.Equal(("x", "gradient"), (messages[1].Tensor.Name, messages[1].Tensor.Role));
            Assert.Equal([0f, 4, 8, 12], MemoryMarshal.Cast<byte, float>(messages[1].Tensor.Data.Span).ToArray());
            Assert.Equal(ResultChunk.KindOneofCase.Stats, messages[2].KindCase);
        }

        var bad = new GradientRequest { Computation = new Computation { Program = "y = frobnicate(x)" } };
        bad.Inputs["x"] = Tensors.F32Scalar(1);
        using var failing = service.Autodiff.GradientStream(bad);
        var e = await Assert.ThrowsAsync<RpcException>(() => failing.ResponseStream.MoveNext(default));
        GrpcErrors.Check(e, StatusCode.InvalidArgument, "invalid_graph");
    }
}
