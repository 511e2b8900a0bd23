using Microsoft.AspNetCore.OpenApi;
using Microsoft.OpenApi;

namespace AutogradService.Api.Rest;

/// <summary>
/// Marks an endpoint as taking a JSON body, for the OpenAPI document only. ASP.NET's own <c>Accepts</c> would also make
/// routing match on the content type, and a request with another type would then fall through to an empty 404; here
/// the endpoint is matched and <see cref="Json.JsonBody"/> answers <c>unsupported_media_type</c> (415) in the contract's form.
/// </summary>
public sealed class JsonRequestBody
{
    public static readonly JsonRequestBody Instance = new();

    /// <summary>Declares the JSON request body of every marked operation.</summary>
    public sealed class Transformer : IOpenApiOperationTransformer
    {
        public Task TransformAsync(OpenApiOperation operation, OpenApiOperationTransformerContext context, CancellationToken cancellationToken)
        {
            if (context.Description.ActionDescriptor.EndpointMetadata.OfType<JsonRequestBody>().Any())
            {
                operation.RequestBody = new OpenApiRequestBody
                {
                    Required = true,
                    Content = new Dictionary<string, OpenApiMediaType>
                    {
                        ["application/json"] = new() { Schema = new OpenApiSchema { Type = JsonSchemaType.Object } },
                    },
                };
            }
            return Task.CompletedTask;
        }
    }
}

public static class JsonRequestBodyExtensions
{
    public static RouteHandlerBuilder AcceptsJson(this RouteHandlerBuilder builder) => builder.WithMetadata(JsonRequestBody.Instance);
}
