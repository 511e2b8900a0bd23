using AutogradService.Api.Execution;
using AutogradService.Api.Options;
using AutogradService.Contracts.V1;
using AutogradService.Engine;
using AutogradService.Engine.Ops;
using Google.Protobuf;
using Grpc.Core;
using Microsoft.Extensions.Options;

namespace AutogradService.Api.Grpc;

/// <summary>gRPC stateless transforms: map the message, let <see cref="TransformService"/> run it, map the result back.</summary>
public sealed class AutodiffGrpcService(TransformService transforms, Engine.Backends.Devices devices, IOptions<LimitsOptions> limits) : Autodiff.AutodiffBase
{
    private long MaxElements => limits.Value.MaxTensorElements;

    public override async Task<EvaluateResponse> Evaluate(EvaluateRequest request, ServerCallContext context)
    {
        var result = await Run(Common(TransformKind.Evaluate, request.Computation, request.Inputs, request.Outputs, request.Limits, request.Device, request.DetectAnomaly, request.AllowTf32), context);
        var response = new EvaluateResponse { Stats = Stats(result.Stats) };
        Fill(response.Outputs, result.Outputs);
        return response;
    }

    public override async Task<GradientResponse> Gradient(GradientRequest request, ServerCallContext context)
    {
        var result = await Run(ToEngine(request), context);
        var response = new GradientResponse { Stats = Stats(result.Stats) };
        Fill(response.Outputs, result.Outputs);
        Fill(response.Gradients, result.Gradients!);
        foreach (var (name, (value, adjoint)) in result.Intermediates!)
            response.Intermediates[name] = new ValueAndAdjoint { Value = ProtoMapping.ToProto(value), Adjoint = ProtoMapping.ToProto(adjoint) };
        return response;
    }

    public override async Task GradientStream(GradientRequest request, IServerStreamWriter<ResultChunk> responseStream, ServerCallContext context)
    {
        var engineRequest = ToEngine(request);
        await foreach (var e in transforms.StreamGradientAsync(engineRequest, Cancellation(context)))
        {
            if (e is StreamEvent.Done done)
            {
                await responseStream.WriteAsync(new ResultChunk { Stats = Stats(done.Stats) }, context.CancellationToken);
                continue;
            }
            var t = (StreamEvent.Tensor)e;
            int elementSize = Engine.Tensors.DTypes.SizeOf(t.Value.DType);
            foreach (var (start, count) in ResultChunks.Of(t.Value))
            {
                var message = new TensorChunk
                {
                    Name = t.Name,
                    Role = t.Role,
                    Dtype = ProtoMapping.ToProto(t.Value.DType),
                    Offset = start,
                    Data = UnsafeByteOperations.UnsafeWrap(t.Value.LittleEndianMemory.Slice(start * elementSize, count * elementSize)),
                    Last = start + count >= t.Value.Shape.ElementCount,
                };
                if (start == 0) message.Shape.Add(t.Value.Shape.Dims.ToArray().Select(d => (long)d));
                await responseStream.WriteAsync(new ResultChunk { Tensor = message }, context.CancellationToken);
            }
        }
    }

    public override async Task<JvpResponse> Jvp(JvpRequest request, ServerCallContext context)
    {
        var result = await Run(Common(TransformKind.Jvp, request.Computation, request.Inputs, request.Outputs, request.Limits, request.Device, request.DetectAnomaly, request.AllowTf32) with
        {
            Tangents = ProtoMapping.ToEngine(request.Tangents, MaxElements),
        }, context);
        var response = new JvpResponse { Stats = Stats(result.Stats) };
        Fill(response.Outputs, result.Outputs);
        Fill(response.TangentsOut, result.TangentsOut!);
        return response;
    }

    public override async Task<JacobianResponse> Jacobian(JacobianRequest request, ServerCallContext context)
    {
        var result = await Run(Common(TransformKind.Jacobian, request.Computation, request.Inputs, request.Outputs, request.Limits, request.Device, request.DetectAnomaly, request.AllowTf32) with
        {
            Wrt = Names(request.Wrt),
            Mode = request.Mode switch
            {
                Contracts.V1.JacobianMode.Forward => Engine.Autodiff.JacobianMode.Forward,
                Contracts.V1.JacobianMode.Reverse => Engine.Autodiff.JacobianMode.Reverse,
                _ => Engine.Autodiff.JacobianMode.Auto,
            },
        }, context);
        var response = new JacobianResponse
        {
            Stats = Stats(result.Stats),
            ModeUsed = result.ModeUsed == Engine.Autodiff.JacobianMode.Forward ? Contracts.V1.JacobianMode.Forward : Contracts.V1.JacobianMode.Reverse,
        };
        Fill(response.Outputs, result.Outputs);
        foreach (var (output, row) in result.Jacobians!)
        {
            var r = new JacobianRow();
            Fill(r.ByInput, row);
            response.Jacobians[output] = r;
        }
        return response;
    }

    public override async Task<HessianResponse> Hessian(HessianRequest request, ServerCallContext context)
    {
        var result = await Run(Common(TransformKind.Hessian, request.Computation, request.Inputs, request.Outputs, request.Limits, request.Device, request.DetectAnomaly, request.AllowTf32) with
        {
            Wrt = Names(request.Wrt),
            Vector = request.Vector.Count > 0 ? ProtoMapping.ToEngine(request.Vector, MaxElements) : null,
        }, context);
        var response = new HessianResponse { Stats = Stats(result.Stats) };
        if (result.Hvp is not null) Fill(response.Hvp, result.Hvp);
        foreach (var (input, row) in result.Hessians ?? new Dictionary<string, IReadOnlyDictionary<string, Engine.Tensors.HostTensor>>())
        {
            var r = new JacobianRow();
            Fill(r.ByInput, row);
            response.Hessians[input] = r;
        }
        return response;
    }

    public override async Task<InspectResponse> Inspect(InspectRequest request, ServerCallContext context)
    {
        // Only types: nothing is allocated, so a shape is held to what any tensor may have, not the request limit.
        var types = request.Inputs.ToDictionary(kv => kv.Key,
            kv => new Engine.Tensors.TensorType(Engine.Tensors.Shape.FromLongs(kv.Value.Shape.ToArray(), $"the shape of input '{kv.Key}'"),
                ProtoMapping.ToEngine(kv.Value.Dtype)));
        var report = await transforms.InspectAsync(Source(request.Computation), types, context.CancellationToken);
        var response = new InspectResponse
        {
            Valid = true,
            Flops = report.Plan.Estimates.Flops,
            PeakBytes = report.Plan.Estimates.PeakBytes,
            PeakBytesExact = report.Plan.Estimates.Complete,
            PeakBytesCaveat = report.Plan.Estimates.Caveat ?? "",
            Dot = report.Dot,
            Mermaid = report.Mermaid,
        };
        foreach (var (name, type) in report.Plan.ValueTypes)
        {
            var info = new ValueInfo { Name = name, Dtype = type.DType is { } d ? ProtoMapping.ToProto(d) : Contracts.V1.DType.Float32 };
            if (type.Dims is { } dims) info.Shape.Add(dims.Select(x => (long)x));
            response.Values.Add(info);
        }
        return response;
    }

    public override Task<ListDevicesResponse> ListDevices(ListDevicesRequest request, ServerCallContext context)
    {
        var response = new ListDevicesResponse { DefaultDevice = devices.Default };
        response.Devices.Add(devices.List().Select(d => new DeviceInfo
        {
            Name = d.Name, Kind = d.Kind, MemoryBytes = d.MemoryBytes, Units = d.Units, Description = d.Description,
        }));
        return Task.FromResult(response);
    }

    public override Task<ListOpsResponse> ListOps(ListOpsRequest request, ServerCallContext context)
    {
        var response = new ListOpsResponse();
        foreach (var s in Rest.CatalogEndpoints.Catalog())
        {
            var info = new OpInfo
            {
                Name = s.Name, Category = s.Category, Summary = s.Summary, OutputRule = s.OutputRule, Differentiable = s.Differentiable,
            };
            info.Aliases.Add(s.Aliases);
            info.Inputs.Add(s.Inputs.Select(i => new OpInputInfo { Name = i.Name, Variadic = i.Variadic, Differentiable = i.Differentiable && s.Differentiable }));
            info.Attributes.Add(s.Attributes.Select(a => new OpAttributeInfo
            {
                Name = a.Name, Kind = a.Kind.ToString().ToLowerInvariant(), Required = a.Required, Description = a.Description, DefaultValue = a.Default ?? "",
            }));
            response.Ops.Add(info);
        }
        return Task.FromResult(response);
    }

    public override Task<PingResponse> Ping(PingRequest request, ServerCallContext context) => Task.FromResult(new PingResponse());

    /// <summary>The fields every transform request shares.</summary>
    private TransformRequest Common(TransformKind kind, Computation? computation, Google.Protobuf.Collections.MapField<string, Contracts.V1.Tensor> inputs,
        Google.Protobuf.Collections.RepeatedField<string> outputs, RequestLimits? limits, string device, bool detectAnomaly, bool allowTf32) => new()
    {
        Kind = kind,
        Source = Source(computation),
        Inputs = ProtoMapping.ToEngine(inputs, MaxElements),
        Outputs = Names(outputs),
        // Proto3 zero means unset; negative values are the caller's error; larger than the server's are capped later.
        MemoryBytes = Positive(limits?.MemoryBytes, "limits.memory_bytes"),
        TimeoutMs = Positive(limits?.TimeoutMs, "limits.timeout_ms") is { } ms ? (int)Math.Min(ms, int.MaxValue) : null,
        Device = device,
        DetectAnomaly = detectAnomaly,
        AllowTf32 = allowTf32,
    };

    private TransformRequest ToEngine(Contracts.V1.GradientRequest request) =>
        Common(TransformKind.Gradient, request.Computation, request.Inputs, request.Outputs, request.Limits, request.Device, request.DetectAnomaly, request.AllowTf32) with
    {
        Wrt = Names(request.Wrt),
        Seeds = request.Seeds.Count > 0 ? ProtoMapping.ToEngine(request.Seeds, MaxElements) : null,
        Intermediates = Names(request.Intermediates),
    };

    private Task<TransformResult> Run(TransformRequest request, ServerCallContext context) => transforms.RunAsync(request, Cancellation(context));

    /// <summary>The client's deadline is honoured through the call's cancellation token.</summary>
    private static CancellationToken Cancellation(ServerCallContext context) => context.CancellationToken;

    private static long? Positive(long? value, string field) => value switch
    {
        null or 0 => null,
        < 0 => throw Json.JsonFields.Invalid(field, $"must be positive, got {value}"),
        _ => value,
    };

    private ComputationSource Source(Computation? c) => c?.SourceCase switch
    {
        Computation.SourceOneofCase.Graph => new ComputationSource(Graph: ProtoMapping.ToEngine(c.Graph, limits.Value.Graph())),
        Computation.SourceOneofCase.Program => new ComputationSource(Program: c.Program) { StrictInputs = c.StrictInputs },
        Computation.SourceOneofCase.Model => new ComputationSource(Model: c.Model),
        _ => throw EngineException.InvalidArgument("the request needs a computation: a graph, a program or a model name"),
    };

    private static List<string>? Names(Google.Protobuf.Collections.RepeatedField<string> names) => names.Count > 0 ? names.ToList() : null;

    private static void Fill(Google.Protobuf.Collections.MapField<string, Contracts.V1.Tensor> target, IReadOnlyDictionary<string, Engine.Tensors.HostTensor> source)
    {
        foreach (var (name, t) in source) target[name] = ProtoMapping.ToProto(t);
    }

    private static Stats Stats(TransformStats s) => new()
    {
        ForwardMs = s.ForwardMs, BackwardMs = s.BackwardMs, PeakBytes = s.PeakBytes, NodesExecuted = s.NodesExecuted, Device = s.Device,
    };
}
