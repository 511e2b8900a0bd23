using System.Buffers;
using System.Globalization;
using System.Net.Http.Headers;
using System.Runtime.CompilerServices;
using System.Text.Json;
using AutogradService.Contracts.V1;
using Google.Protobuf;

namespace AutogradService.Client.Transport;

/// <summary>
/// REST JSON over an <see cref="HttpClient"/> (its BaseAddress is the service's REST address): for networks where
/// gRPC cannot reach (HTTP/1.1-only proxies, browsers' hosts). Same messages in, same messages out as gRPC.
/// </summary>
internal sealed class RestTransport(HttpClient http) : IAutogradTransport
{
    private static readonly MediaTypeHeaderValue Json = new("application/json");
    private int _roundTrips;

    public string Name => "rest";

    public int RoundTrips => Volatile.Read(ref _roundTrips);

    private async Task<JsonDocument?> SendAsync(HttpMethod method, string path, Action<Utf8JsonWriter>? body, CancellationToken ct)
    {
        Interlocked.Increment(ref _roundTrips);
        using var request = new HttpRequestMessage(method, path.TrimStart('/'));
        if (body is not null) request.Content = Content(body);
        HttpResponseMessage response;
        try
        {
            response = await http.SendAsync(request, ct).ConfigureAwait(false);
        }
        catch (HttpRequestException e)
        {
            // The network's failures are the same one exception as the service's (gRPC says UNAVAILABLE for these).
            throw new AutogradException("unavailable", $"{method} {http.BaseAddress}{path}: {e.Message}", inner: e);
        }
        using var _ = response;
        var bytes = await response.Content.ReadAsByteArrayAsync(ct).ConfigureAwait(false);
        if (!response.IsSuccessStatusCode) throw Problem(response, bytes);
        return bytes.Length == 0 ? null : JsonDocument.Parse(bytes);
    }

    private static ByteArrayContent Content(Action<Utf8JsonWriter> body)
    {
        var buffer = new ArrayBufferWriter<byte>();
        using (var w = new Utf8JsonWriter(buffer)) body(w);
        var content = new ByteArrayContent(buffer.WrittenSpan.ToArray());
        content.Headers.ContentType = Json;
        return content;
    }

    private static Action<Utf8JsonWriter> Object(Action<Utf8JsonWriter> fields) => w =>
    {
        w.WriteStartObject();
        fields(w);
        w.WriteEndObject();
    };

    /// <summary>problem+json as an AutogradException: code, detail, node, op, input, command_index, Retry-After.</summary>
    private static AutogradException Problem(HttpResponseMessage response, byte[] body)
    {
        string code = $"http_{(int)response.StatusCode}", detail = response.ReasonPhrase ?? "";
        string? node = null, op = null, input = null;
        int? index = null;
        try
        {
            using var doc = JsonDocument.Parse(body);
            var p = doc.RootElement;
            if (p.ValueKind == JsonValueKind.Object)
            {
                string? S(string name) => p.TryGetProperty(name, out var v) && v.ValueKind == JsonValueKind.String ? v.GetString() : null;
                code = S("code") ?? code;
                detail = S("detail") ?? S("title") ?? detail;
                (node, op, input) = (S("node"), S("op"), S("input"));
                if (p.TryGetProperty("command_index", out var ci) && ci.TryGetInt32(out int i)) index = i;
            }
        }
        catch (JsonException)
        {
            // Not problem details (a proxy's page, say): the status is all there is.
        }
        TimeSpan? retry = response.Headers.RetryAfter?.Delta;
        return new AutogradException(code, detail, node, op, input, index, ((int)response.StatusCode).ToString(CultureInfo.InvariantCulture), retry);
    }

    public async Task<EvaluateResponse> EvaluateAsync(EvaluateRequest r, CancellationToken ct)
    {
        using var doc = await SendAsync(HttpMethod.Post, "v1/evaluate", Object(w =>
            RestJson.WriteCommon(w, r.Computation, r.Inputs, r.Outputs, r.Limits, r.Device, r.DetectAnomaly)), ct).ConfigureAwait(false);
        var body = doc!.RootElement;
        var response = new EvaluateResponse { Stats = RestJson.ReadStats(body) };
        RestJson.ReadTensors(body, "outputs", response.Outputs);
        return response;
    }

    public async Task<GradientResponse> GradientAsync(GradientRequest r, CancellationToken ct)
    {
        using var doc = await SendAsync(HttpMethod.Post, "v1/gradient", Object(w => WriteGradient(w, r)), ct).ConfigureAwait(false);
        var body = doc!.RootElement;
        var response = new GradientResponse { Stats = RestJson.ReadStats(body) };
        RestJson.ReadTensors(body, "outputs", response.Outputs);
        RestJson.ReadTensors(body, "gradients", response.Gradients);
        if (body.TryGetProperty("intermediates", out var im))
            foreach (var p in im.EnumerateObject())
            {
                var pair = new ValueAndAdjoint { Value = RestJson.ReadTensor(p.Value.GetProperty("value")) };
                if (p.Value.TryGetProperty("adjoint", out var a) && a.ValueKind == JsonValueKind.Object) pair.Adjoint = RestJson.ReadTensor(a);
                response.Intermediates[p.Name] = pair;
            }
        return response;
    }

    private static void WriteGradient(Utf8JsonWriter w, GradientRequest r)
    {
        RestJson.WriteCommon(w, r.Computation, r.Inputs, r.Outputs, r.Limits, r.Device, r.DetectAnomaly);
        RestJson.WriteNames(w, "wrt", r.Wrt);
        RestJson.WriteTensors(w, "seeds", r.Seeds);
        RestJson.WriteNames(w, "intermediates", r.Intermediates);
    }

    public async Task<JvpResponse> JvpAsync(JvpRequest r, CancellationToken ct)
    {
        using var doc = await SendAsync(HttpMethod.Post, "v1/jvp", Object(w =>
        {
            RestJson.WriteCommon(w, r.Computation, r.Inputs, r.Outputs, r.Limits, r.Device, r.DetectAnomaly);
            RestJson.WriteTensors(w, "tangents", r.Tangents);
        }), ct).ConfigureAwait(false);
        var body = doc!.RootElement;
        var response = new JvpResponse { Stats = RestJson.ReadStats(body) };
        RestJson.ReadTensors(body, "outputs", response.Outputs);
        RestJson.ReadTensors(body, "tangents_out", response.TangentsOut);
        return response;
    }

    public async Task<JacobianResponse> JacobianAsync(JacobianRequest r, CancellationToken ct)
    {
        using var doc = await SendAsync(HttpMethod.Post, "v1/jacobian", Object(w =>
        {
            RestJson.WriteCommon(w, r.Computation, r.Inputs, r.Outputs, r.Limits, r.Device, r.DetectAnomaly);
            RestJson.WriteNames(w, "wrt", r.Wrt);
            w.WriteString("mode", r.Mode switch { JacobianMode.Forward => "forward", JacobianMode.Reverse => "reverse", _ => "auto" });
        }), ct).ConfigureAwait(false);
        var body = doc!.RootElement;
        var response = new JacobianResponse
        {
            Stats = RestJson.ReadStats(body),
            ModeUsed = body.TryGetProperty("mode_used", out var m) ? m.GetString() switch
            {
                "forward" => JacobianMode.Forward,
                "reverse" => JacobianMode.Reverse,
                _ => JacobianMode.Auto,
            } : JacobianMode.Auto,
        };
        RestJson.ReadTensors(body, "outputs", response.Outputs);
        RestJson.ReadRows(body, "jacobians", response.Jacobians);
        return response;
    }

    public async Task<HessianResponse> HessianAsync(HessianRequest r, CancellationToken ct)
    {
        using var doc = await SendAsync(HttpMethod.Post, "v1/hessian", Object(w =>
        {
            RestJson.WriteCommon(w, r.Computation, r.Inputs, r.Outputs, r.Limits, r.Device, r.DetectAnomaly);
            RestJson.WriteNames(w, "wrt", r.Wrt);
            RestJson.WriteTensors(w, "vector", r.Vector);
        }), ct).ConfigureAwait(false);
        var body = doc!.RootElement;
        var response = new HessianResponse { Stats = RestJson.ReadStats(body) };
        RestJson.ReadTensors(body, "outputs", response.Outputs);
        RestJson.ReadRows(body, "hessians", response.Hessians);
        RestJson.ReadTensors(body, "hvp", response.Hvp);
        return response;
    }

    /// <summary>NDJSON lines as they arrive, each mapped to the same ResultChunk gRPC streams.</summary>
    public async IAsyncEnumerable<ResultChunk> GradientStreamAsync(GradientRequest r, [EnumeratorCancellation] CancellationToken ct)
    {
        Interlocked.Increment(ref _roundTrips);
        using var request = new HttpRequestMessage(HttpMethod.Post, "v1/gradient") { Content = Content(Object(w => WriteGradient(w, r))) };
        request.Headers.Accept.Add(new MediaTypeWithQualityHeaderValue("application/x-ndjson"));
        using var response = await http.SendAsync(request, HttpCompletionOption.ResponseHeadersRead, ct).ConfigureAwait(false);
        if (!response.IsSuccessStatusCode) throw Problem(response, await response.Content.ReadAsByteArrayAsync(ct).ConfigureAwait(false));
        using var reader = new StreamReader(await response.Content.ReadAsStreamAsync(ct).ConfigureAwait(false));
        while (await reader.ReadLineAsync(ct).ConfigureAwait(false) is { } line)
        {
            if (line.Length == 0) continue;
            using var doc = JsonDocument.Parse(line);
            var e = doc.RootElement;
            if (!e.TryGetProperty("name", out var name))
            {
                if (e.TryGetProperty("stats", out _)) yield return new ResultChunk { Stats = RestJson.ReadStats(e) };
                continue;
            }
            var flat = RestJson.ReadTensor(e);
            var chunk = new TensorChunk
            {
                Name = name.GetString(),
                Role = e.GetProperty("role").GetString(),
                Dtype = flat.Dtype,
                Offset = e.TryGetProperty("offset", out var o) ? o.GetInt64() : 0,
                Last = !e.TryGetProperty("last", out var last) || last.ValueKind == JsonValueKind.True,
            };
            chunk.Shape.Add(flat.Shape);
            // The chunk's data is a flat run of elements, whatever the tensor's shape: read it as such.
            flat.Shape.Clear();
            flat.Shape.Add(flat.Raw.IsEmpty ? Count(flat) : flat.Raw.Length / Size(flat.Dtype));
            chunk.Data = flat.Raw.IsEmpty ? ByteString.CopyFrom(RawOf(flat)) : flat.Raw;
            yield return new ResultChunk { Tensor = chunk };
        }
    }

    private static int Size(DType d) => d switch { DType.Float64 or DType.Int64 => 8, DType.Float32 => 4, _ => 1 };

    private static int Count(Tensor t) => t.FloatData.Count + t.DoubleData.Count + t.Int64Data.Count + t.BoolData.Count;

    private static byte[] RawOf(Tensor t) => t.Dtype switch
    {
        DType.Float32 => System.Runtime.InteropServices.MemoryMarshal.AsBytes(t.FloatData.ToArray().AsSpan()).ToArray(),
        DType.Float64 => System.Runtime.InteropServices.MemoryMarshal.AsBytes(t.DoubleData.ToArray().AsSpan()).ToArray(),
        DType.Int64 => System.Runtime.InteropServices.MemoryMarshal.AsBytes(t.Int64Data.ToArray().AsSpan()).ToArray(),
        _ => t.BoolData.Select(b => b ? (byte)1 : (byte)0).ToArray(),
    };

    public async Task<InspectResponse> InspectAsync(InspectRequest r, CancellationToken ct)
    {
        using var doc = await SendAsync(HttpMethod.Post, "v1/inspect", Object(w =>
        {
            RestJson.WriteComputation(w, r.Computation);
            RestJson.WriteTensors(w, "inputs", r.Inputs, typeOnly: true);
        }), ct).ConfigureAwait(false);
        var body = doc!.RootElement;
        var response = new InspectResponse
        {
            Valid = !body.TryGetProperty("valid", out var v) || v.ValueKind == JsonValueKind.True,
            Flops = body.TryGetProperty("flops", out var f) ? f.GetInt64() : 0,
            PeakBytes = body.TryGetProperty("peak_bytes", out var pb) ? pb.GetInt64() : 0,
            Dot = body.TryGetProperty("dot", out var dot) ? dot.GetString() : "",
            Mermaid = body.TryGetProperty("mermaid", out var mermaid) ? mermaid.GetString() : "",
        };
        if (body.TryGetProperty("values", out var values))
            foreach (var p in values.EnumerateObject())
            {
                var info = new ValueInfo { Name = p.Name };
                if (p.Value.TryGetProperty("dtype", out var dt) && dt.ValueKind == JsonValueKind.String) info.Dtype = Tensors.Parse(dt.GetString());
                if (p.Value.TryGetProperty("shape", out var shape) && shape.ValueKind == JsonValueKind.Array)
                    foreach (var d in shape.EnumerateArray()) info.Shape.Add(d.ValueKind == JsonValueKind.Number ? d.GetInt64() : -1);
                response.Values.Add(info);
            }
        return response;
    }

    public async Task<ListOpsResponse> ListOpsAsync(CancellationToken ct)
    {
        using var doc = await SendAsync(HttpMethod.Get, "v1/ops", null, ct).ConfigureAwait(false);
        return RestJson.ReadOps(doc!.RootElement);
    }

    public async Task<ListDevicesResponse> ListDevicesAsync(CancellationToken ct)
    {
        using var doc = await SendAsync(HttpMethod.Get, "v1/devices", null, ct).ConfigureAwait(false);
        return RestJson.ReadDevices(doc!.RootElement);
    }

    public async Task<ModelInfo> PutModelAsync(PutModelRequest r, CancellationToken ct)
    {
        using var doc = await SendAsync(HttpMethod.Put, $"v1/models/{Uri.EscapeDataString(r.Name)}", Object(w =>
        {
            if (r.SourceCase == PutModelRequest.SourceOneofCase.Graph)
            {
                w.WritePropertyName("graph");
                RestJson.WriteGraph(w, r.Graph);
            }
            else w.WriteString("program", r.Program);
        }), ct).ConfigureAwait(false);
        return RestJson.ReadModel(doc!.RootElement);
    }

    public async Task<ModelInfo> GetModelAsync(string name, CancellationToken ct)
    {
        using var doc = await SendAsync(HttpMethod.Get, $"v1/models/{Uri.EscapeDataString(name)}", null, ct).ConfigureAwait(false);
        return RestJson.ReadModel(doc!.RootElement);
    }

    public async Task<ListModelsResponse> ListModelsAsync(CancellationToken ct)
    {
        using var doc = await SendAsync(HttpMethod.Get, "v1/models", null, ct).ConfigureAwait(false);
        var response = new ListModelsResponse();
        foreach (var m in doc!.RootElement.GetProperty("models").EnumerateArray()) response.Models.Add(RestJson.ReadModel(m));
        return response;
    }

    public async Task DeleteModelAsync(string name, CancellationToken ct)
    {
        using var _ = await SendAsync(HttpMethod.Delete, $"v1/models/{Uri.EscapeDataString(name)}", null, ct).ConfigureAwait(false);
    }

    public ISessionChannel OpenSession(SessionOptions options) => new Channel(this, options);

    /// <summary>A REST session: opened (POST /v1/sessions) with the first batch, one POST per batch, DELETE on dispose.</summary>
    private sealed class Channel(RestTransport owner, SessionOptions options) : ISessionChannel
    {
        private readonly SemaphoreSlim _gate = new(1, 1);
        private string? _id;

        public async Task<IReadOnlyList<Reply>> RunAsync(IReadOnlyList<Command> commands, CancellationToken ct)
        {
            await _gate.WaitAsync(ct).ConfigureAwait(false);
            try
            {
                _id ??= await OpenAsync(ct).ConfigureAwait(false);
                try
                {
                    using var doc = await owner.SendAsync(HttpMethod.Post, $"v1/sessions/{_id}/commands", Object(w =>
                    {
                        w.WriteStartArray("commands");
                        foreach (var c in commands) RestJson.WriteCommand(w, c);
                        w.WriteEndArray();
                    }), ct).ConfigureAwait(false);
                    var replies = new List<Reply>(commands.Count);
                    int index = 0;
                    foreach (var r in doc!.RootElement.GetProperty("results").EnumerateArray())
                    {
                        var reply = new Reply { CommandIndex = index++ };
                        if (r.TryGetProperty("value", out var value)) reply.Value = RestJson.ReadTensor(value);
                        replies.Add(reply);
                    }
                    return replies;
                }
                catch (AutogradException e) when (e.CommandIndex is { } failed)
                {
                    // The commands before the failed one ran, but REST answers a failed batch with its error alone.
                    var replies = new List<Reply>(failed + 1);
                    for (int i = 0; i < failed; i++) replies.Add(new Reply { CommandIndex = i });
                    replies.Add(new Reply
                    {
                        CommandIndex = failed,
                        Error = new CommandError { Code = e.Code, Detail = e.Detail, Node = e.Node ?? "", Op = e.Op ?? "", Input = e.Input ?? "" },
                    });
                    return replies;
                }
            }
            finally
            {
                _gate.Release();
            }
        }

        private async Task<string> OpenAsync(CancellationToken ct)
        {
            using var doc = await owner.SendAsync(HttpMethod.Post, "v1/sessions", Object(w =>
            {
                w.WriteString("gradient_mode", options.GradientMode == GradientMode.Overwrite ? "overwrite" : "accumulate");
                if (options.MemoryBytes > 0) w.WriteNumber("memory_bytes", options.MemoryBytes);
                if (options.IdleTimeoutMs > 0) w.WriteNumber("idle_timeout_ms", options.IdleTimeoutMs);
                if (options.StrictScalarSeed) w.WriteBoolean("strict_scalar_seed", true);
                if (options.DetectAnomaly) w.WriteBoolean("detect_anomaly", true);
            }), ct).ConfigureAwait(false);
            return doc!.RootElement.GetProperty("id").GetString()!;
        }

        public async ValueTask DisposeAsync()
        {
            await _gate.WaitAsync().ConfigureAwait(false);
            try
            {
                if (_id is null) return;
                try
                {
                    using var _ = await owner.SendAsync(HttpMethod.Delete, $"v1/sessions/{_id}", null, CancellationToken.None).ConfigureAwait(false);
                }
                catch (AutogradException e) when (e.Code == "not_found")
                {
                    // Expired or already closed: nothing left to free.
                }
                _id = null;
            }
            finally
            {
                _gate.Release();
            }
        }
    }
}
