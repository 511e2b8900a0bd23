using AutogradService.Api.Options;
using AutogradService.Api.Security;
using AutogradService.Contracts.Inference;
using AutogradService.Contracts.V2;
using Grpc.Core;
using Microsoft.Extensions.Options;

namespace AutogradService.Api.Inference;

/// <summary>The Open Inference Protocol's <c>inference.GRPCInferenceService</c>, mapped onto <see cref="InferenceService"/>.</summary>
public sealed class InferenceGrpcService(InferenceService inference, IOptions<LimitsOptions> limits) : GRPCInferenceService.GRPCInferenceServiceBase
{
    public override Task<ServerLiveResponse> ServerLive(ServerLiveRequest request, ServerCallContext context) =>
        Task.FromResult(new ServerLiveResponse { Live = true });

    public override async Task<ServerReadyResponse> ServerReady(ServerReadyRequest request, ServerCallContext context) =>
        new() { Ready = await inference.ServerReadyAsync(context.CancellationToken) };

    /// <summary>A model this caller cannot use (absent, another caller's, another version) is not ready.</summary>
    public override Task<ModelReadyResponse> ModelReady(ModelReadyRequest request, ServerCallContext context) =>
        Task.FromResult(new ModelReadyResponse { Ready = inference.ModelReady(request.Name, request.Version, CallerOf(context)) });

    public override Task<ServerMetadataResponse> ServerMetadata(ServerMetadataRequest request, ServerCallContext context)
    {
        var response = new ServerMetadataResponse { Name = InferenceService.ServerName, Version = InferenceService.ServerVersion };
        response.Extensions.Add(InferenceService.Extensions);
        return Task.FromResult(response);
    }

    public override Task<ModelMetadataResponse> ModelMetadata(ModelMetadataRequest request, ServerCallContext context) =>
        Task.FromResult(OipProto.ToMetadata(inference.Metadata(request.Name, request.Version, CallerOf(context))));

    public override async Task<ModelInferResponse> ModelInfer(ModelInferRequest request, ServerCallContext context)
    {
        var call = OipProto.ReadCall(InferenceKind.Infer, request, limits.Value);
        return OipProto.ToResponse(await inference.RunAsync(call, CallerOf(context), context.CancellationToken));
    }

    internal static Caller CallerOf(ServerCallContext context) => Caller.From(context.GetHttpContext());
}

/// <summary>The gradient extension over gRPC (<c>autograd.v2.GradientService</c>): infer requests plus cotangents, tangents, wrt and of.</summary>
public sealed class GradientGrpcService(InferenceService inference, IOptions<LimitsOptions> limits) : GradientService.GradientServiceBase
{
    public override Task<GradientResponse> Vjp(GradientRequest request, ServerCallContext context) => Run(InferenceKind.Vjp, request, context);

    public override Task<GradientResponse> Jvp(GradientRequest request, ServerCallContext context) => Run(InferenceKind.Jvp, request, context);

    public override Task<GradientResponse> Jacobian(GradientRequest request, ServerCallContext context) => Run(InferenceKind.Jacobian, request, context);

    private async Task<GradientResponse> Run(InferenceKind kind, GradientRequest request, ServerCallContext context)
    {
        if (request.Infer is null) throw Json.JsonFields.Invalid("infer", "is required: the model, its inputs and outputs, as for ModelInfer");
        if (kind != InferenceKind.Vjp && request.Cotangents.Count > 0) throw Json.JsonFields.Invalid("cotangents", "belong to Vjp");
        if (kind != InferenceKind.Jvp && request.Tangents.Count > 0) throw Json.JsonFields.Invalid("tangents", "belong to Jvp");
        if (kind == InferenceKind.Jvp && request.Wrt.Count > 0) throw Json.JsonFields.Invalid("wrt", "does not apply to Jvp: the tangents name the inputs");
        var call = OipProto.ReadCall(kind, request.Infer, limits.Value, request.Cotangents, request.RawCotangentContents,
            request.Tangents, request.RawTangentContents, request.Wrt, request.Of);
        var reply = await inference.RunAsync(call, InferenceGrpcService.CallerOf(context), context.CancellationToken);
        var response = new GradientResponse { Outputs = OipProto.ToResponse(reply) };
        foreach (var d in reply.Derivatives)
        {
            response.Derivatives.Add(OipProto.ToOutput(d));
            response.RawDerivativeContents.Add(OipProto.Raw(d.Value));
        }
        return response;
    }
}
