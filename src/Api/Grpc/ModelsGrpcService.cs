using AutogradService.Api.Models;
using AutogradService.Contracts.V1;
using AutogradService.Engine;
using AutogradService.Engine.Graphs;
using Grpc.Core;

namespace AutogradService.Api.Grpc;

/// <summary>gRPC mirror of the REST model repository.</summary>
public sealed class ModelsGrpcService(ModelRepository repo, Microsoft.Extensions.Options.IOptions<Options.LimitsOptions> limits) : Contracts.V1.Models.ModelsBase
{
    public override Task<ModelInfo> Put(PutModelRequest request, ServerCallContext context)
    {
        var graphLimits = limits.Value.Graph(context.CancellationToken);
        var graph = request.SourceCase switch
        {
            PutModelRequest.SourceOneofCase.Graph => ProtoMapping.ToEngine(request.Graph, graphLimits),
            PutModelRequest.SourceOneofCase.Program => ProgramParser.Parse(request.Program, limits: graphLimits),
            _ => throw EngineException.InvalidArgument("give a graph or a program"),
        };
        return Task.FromResult(Info(repo.Put(request.Name, graph)));
    }

    public override Task<ModelInfo> Get(GetModelRequest request, ServerCallContext context) => Task.FromResult(Info(repo.Get(request.Name)));

    public override Task<ListModelsResponse> List(ListModelsRequest request, ServerCallContext context)
    {
        var response = new ListModelsResponse();
        response.Models.Add(repo.All.Select(Info));
        return Task.FromResult(response);
    }

    public override Task<DeleteModelResponse> Delete(DeleteModelRequest request, ServerCallContext context) =>
        repo.Delete(request.Name)
            ? Task.FromResult(new DeleteModelResponse())
            : throw new EngineException(ErrorCodes.NotFound, $"no model named '{request.Name}'", input: request.Name);

    private static ModelInfo Info(RegisteredModel m)
    {
        var info = new ModelInfo
        {
            Name = m.Name,
            NodeCount = m.Plan.NodeCount,
            Flops = m.Plan.Estimates.Flops,
            PeakBytes = m.Plan.Estimates.PeakBytes,
        };
        info.Outputs.Add(m.Graph.Outputs);
        foreach (var p in m.Graph.Inputs)
        {
            var parameter = new Contracts.V1.Parameter { Name = p.Name, Dtype = ProtoMapping.ToProto(p.DType), HasShape = p.Shape is not null };
            if (p.Shape is { } shape) parameter.Shape.Add(shape.Select(d => (long)d));
            info.Inputs.Add(parameter);
        }
        return info;
    }
}
