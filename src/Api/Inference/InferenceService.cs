using System.Reflection;
using AutogradService.Api.Execution;
using AutogradService.Api.Models;
using AutogradService.Api.Security;
using AutogradService.Engine;
using AutogradService.Engine.Graphs;
using AutogradService.Engine.Tensors;
using Microsoft.Extensions.Diagnostics.HealthChecks;

namespace AutogradService.Api.Inference;

/// <summary>A tensor of a model's signature: -1 marks a dimension of any size (and, alone, a value of any rank).</summary>
public sealed record TensorMetadata(string Name, string Datatype, IReadOnlyList<long> Shape);

public sealed record ModelMetadata(string Name, IReadOnlyList<string> Versions, string Platform,
    IReadOnlyList<TensorMetadata> Inputs, IReadOnlyList<TensorMetadata> Outputs);

/// <summary>
/// The Open Inference Protocol over the model repository, for both transports: server and model metadata, readiness,
/// and inference and gradient calls mapped onto <see cref="TransformService"/> (evaluate, VJP, JVP, Jacobian), which
/// applies the limits and runs the engine. Models have one version, "1". Ownership is the repository's: a model
/// another caller registered is not found.
/// </summary>
public sealed class InferenceService(TransformService transforms, ModelRepository models, HealthCheckService health)
{
    public const string ServerName = "autograd-service";
    public const string ModelVersion = "1";
    public const string Platform = "autograd";

    /// <summary>The protocol extensions served; <c>gradient</c> is this server's own (docs/OIP.md).</summary>
    public static readonly IReadOnlyList<string> Extensions = ["gradient"];

    public static string ServerVersion { get; } =
        typeof(InferenceService).Assembly.GetCustomAttribute<AssemblyInformationalVersionAttribute>()?.InformationalVersion.Split('+')[0] ?? "1.0.0";

    /// <summary>The caller's model, at version "1" (or none given); any other version or model is <c>not_found</c>.</summary>
    public RegisteredModel Find(string name, string? version, Caller caller)
    {
        var model = models.Get(name, caller);
        if (version is { Length: > 0 } v && v != ModelVersion)
            throw new EngineException(ErrorCodes.NotFound,
                $"model '{OipDataTypes.Clip(name)}' has no version '{OipDataTypes.Clip(v)}' (its only version is {ModelVersion})", input: name);
        return model;
    }

    public bool ModelReady(string name, string? version, Caller caller)
    {
        try
        {
            Find(name, version, caller);
            return true;
        }
        catch (EngineException e) when (e.Code == ErrorCodes.NotFound)
        {
            return false;
        }
    }

    /// <summary>Ready as <c>/readyz</c> is: not stopping and the engine queue not full.</summary>
    public async Task<bool> ServerReadyAsync(CancellationToken cancellation) =>
        (await health.CheckHealthAsync(cancellation)).Status != HealthStatus.Unhealthy;

    public ModelMetadata Metadata(string name, string? version, Caller caller)
    {
        var model = Find(name, version, caller);
        var graph = model.Graph;
        var inputs = graph.Inputs.Select(p => new TensorMetadata(p.Name, OipDataTypes.Name(p.DType), Dims(p.Shape))).ToArray();
        var outputs = graph.Outputs.Select((o, i) =>
        {
            var type = i < model.Plan.Root.OutputTypes.Count ? model.Plan.Root.OutputTypes[i] : InferredType.Unknown;
            return new TensorMetadata(o, OipDataTypes.Name(type.DType ?? DType.Float32), Dims(type.Dims));
        }).ToArray();
        return new ModelMetadata(model.Name, [ModelVersion], Platform, inputs, outputs);
    }

    private static long[] Dims(IReadOnlyList<int>? dims) => dims is null ? [-1] : dims.Select(d => d < 0 ? -1L : d).ToArray();

    public async Task<InferenceReply> RunAsync(InferenceCall call, Caller caller, CancellationToken cancellation)
    {
        var model = Find(call.Model, call.Version, caller);
        var request = ToRequest(call, new ComputationSource(Model: model.Name));
        var result = await transforms.RunAsync(request, cancellation);
        return ToReply(call, request, result, model.Name, model.Graph.Outputs);
    }

    /// <summary>The transform a call asks for. Differentiated outputs: those named in <c>of</c>, else (VJP) those given
    /// cotangents, else the requested ones, else all.</summary>
    public static TransformRequest ToRequest(InferenceCall call, ComputationSource source)
    {
        var request = new TransformRequest { Kind = TransformKind.Evaluate, Source = source, Inputs = call.Inputs };
        return call.Kind switch
        {
            InferenceKind.Infer => request with { Outputs = call.Outputs },
            InferenceKind.Vjp => request with
            {
                Kind = TransformKind.Vjp, Seeds = call.Cotangents, Wrt = call.Wrt,
                Outputs = call.Of ?? (call.Cotangents is { Count: > 0 } c ? c.Keys.ToArray() : call.Outputs),
            },
            InferenceKind.Jvp => request with { Kind = TransformKind.Jvp, Tangents = call.Tangents, Outputs = call.Of ?? call.Outputs },
            _ => request with { Kind = TransformKind.Jacobian, Wrt = call.Wrt, Outputs = call.Of ?? call.Outputs },
        };
    }

    /// <summary>The protocol's answer: outputs in the order asked (else the graph's), the derivatives, and a batched
    /// VJP's size in the parameters.</summary>
    public static InferenceReply ToReply(InferenceCall call, TransformRequest request, TransformResult result, string model,
        IReadOnlyList<string> graphOutputs)
    {
        var order = request.Outputs ?? graphOutputs;
        var outputs = order.Where(result.Outputs.ContainsKey).Select(n => new NamedTensor(n, result.Outputs[n])).ToArray();
        var derivatives = call.Kind switch
        {
            InferenceKind.Vjp => result.Gradients!.Select(kv => new NamedTensor(kv.Key, kv.Value)).ToArray(),
            InferenceKind.Jvp => order.Where(result.TangentsOut!.ContainsKey).Select(n => new NamedTensor(n, result.TangentsOut![n])).ToArray(),
            InferenceKind.Jacobian => result.Jacobians!.SelectMany(of => of.Value.Select(wrt => new NamedTensor($"{of.Key}/{wrt.Key}", wrt.Value,
                new Dictionary<string, object> { ["of"] = of.Key, ["wrt"] = wrt.Key }))).ToArray(),
            _ => [],
        };
        var parameters = new Dictionary<string, object>();
        if (result.VjpBatch is { } batch)
        {
            parameters["batch_size"] = (long)batch;
            parameters["batched_backward"] = result.VjpOnePass ? "one_pass" : "per_row";
        }
        return new InferenceReply(model, ModelVersion, call.Id, outputs, derivatives, parameters);
    }
}
