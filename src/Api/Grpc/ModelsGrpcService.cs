using AutogradService.Api.Models;
using AutogradService.Api.Options;
using AutogradService.Api.Security;
using AutogradService.Contracts.V1;
using AutogradService.Engine;
using AutogradService.Engine.Graphs;
using AutogradService.Onnx;
using Grpc.Core;
using Microsoft.Extensions.Options;

namespace AutogradService.Api.Grpc;

/// <summary>gRPC mirror of the REST model repository.</summary>
public sealed class ModelsGrpcService(ModelRepository repo, IOptions<LimitsOptions> limits) : Contracts.V1.Models.ModelsBase
{
    public override Task<ModelInfo> Put(PutModelRequest request, ServerCallContext context)
    {
        var graphLimits = limits.Value.Graph(context.CancellationToken);
        if (request.SourceCase == PutModelRequest.SourceOneofCase.Onnx)
        {
            foreach (var (dim, size) in request.Dims)
                if (size < 0) throw EngineException.InvalidArgument($"dims['{EngineException.Clip(dim)}'] must be ≥ 0, got {size}");
            var bytes = request.Onnx.ToByteArray();
            var imported = OnnxImporter.Import(bytes, new OnnxImportOptions { Limits = graphLimits, Dims = request.Dims });
            return Task.FromResult(Info(repo.PutOnnx(request.Name, imported, bytes, CallerOf(context))));
        }
        if (request.Dims.Count > 0)
            throw EngineException.InvalidArgument("dims size an ONNX model's symbolic dimensions: send them with onnx, not with a graph or program");
        var graph = request.SourceCase switch
        {
            PutModelRequest.SourceOneofCase.Graph => ProtoMapping.ToEngine(request.Graph, graphLimits),
            PutModelRequest.SourceOneofCase.Program => ProgramParser.Parse(request.Program, limits: graphLimits),
            _ => throw EngineException.InvalidArgument("give a graph, a program or an ONNX model"),
        };
        return Task.FromResult(Info(repo.Put(request.Name, graph, CallerOf(context))));
    }

    public override Task<ModelInfo> Get(GetModelRequest request, ServerCallContext context) => Task.FromResult(Info(repo.Get(request.Name, CallerOf(context))));

    /// <summary>The caller's models (an admin's list has every caller's).</summary>
    public override Task<ListModelsResponse> List(ListModelsRequest request, ServerCallContext context)
    {
        var response = new ListModelsResponse();
        response.Models.Add(repo.Visible(CallerOf(context)).Select(Info));
        return Task.FromResult(response);
    }

    public override Task<DeleteModelResponse> Delete(DeleteModelRequest request, ServerCallContext context)
    {
        repo.Delete(request.Name, CallerOf(context));
        return Task.FromResult(new DeleteModelResponse());
    }

    private static Caller CallerOf(ServerCallContext context) => Caller.From(context.GetHttpContext());

    private static ModelInfo Info(RegisteredModel m)
    {
        var info = new ModelInfo
        {
            Name = m.Name,
            Format = m.Format,
            NodeCount = m.Plan.NodeCount,
            Flops = m.Plan.Estimates.Flops,
            PeakBytes = m.Plan.Estimates.PeakBytes,
        };
        info.Outputs.Add(m.Graph.Outputs);
        info.Parameters.Add(m.Onnx?.Parameters ?? []);
        info.OpHistogram.Add(Rest.ModelEndpoints.OpHistogram(m).ToDictionary(kv => kv.Key, kv => (long)kv.Value));
        foreach (var p in m.Graph.Inputs)
        {
            var parameter = new Contracts.V1.Parameter { Name = p.Name, Dtype = ProtoMapping.ToProto(p.DType), HasShape = p.Shape is not null };
            if (p.Shape is { } shape) parameter.Shape.Add(shape.Select(d => (long)d));
            info.Inputs.Add(parameter);
        }
        return info;
    }
}
