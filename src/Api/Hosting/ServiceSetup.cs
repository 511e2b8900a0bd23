using AutogradService.Api.Errors;
using AutogradService.Api.Execution;
using AutogradService.Api.Grpc;
using AutogradService.Api.Inference;
using AutogradService.Api.Metrics;
using AutogradService.Api.Models;
using AutogradService.Api.Operations;
using AutogradService.Api.Options;
using AutogradService.Api.Playground;
using AutogradService.Api.Rest;
using AutogradService.Api.Security;
using AutogradService.Api.Sessions;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Options;
using Prometheus;
using Scalar.AspNetCore;

namespace AutogradService.Api.Hosting;

/// <summary>Everything Program.cs needs, in two calls: services, then endpoints.</summary>
public static class ServiceSetup
{
    public static WebApplicationBuilder AddAutogradService(this WebApplicationBuilder builder)
    {
        var services = builder.Services;
        services.AddOptions<LimitsOptions>().BindConfiguration(LimitsOptions.Section).ValidateSettings(LimitsOptions.Section);
        services.AddOptions<ServerOptions>().BindConfiguration(ServerOptions.Section).ValidateSettings(ServerOptions.Section);
        builder.AddOperations();

        var server = builder.Configuration.GetSection(ServerOptions.Section).Get<ServerOptions>() ?? new ServerOptions();
        var limits = builder.Configuration.GetSection(LimitsOptions.Section).Get<LimitsOptions>() ?? new LimitsOptions();
        builder.WebHost.ConfigureKestrel(kestrel =>
        {
            // Kestrel is configured while the app is built: a bad setting stops it here, named in one line (Program.cs).
            StartupErrors.ValidateSettings(kestrel.ApplicationServices);
            kestrel.Limits.MaxRequestBodySize = limits.MaxRequestBodyBytes;
            var address = System.Net.IPAddress.Parse(server.BindAddress);
            // REST and gRPC-Web speak HTTP/1.1; gRPC needs HTTP/2, which Kestrel offers without TLS only on a port of its own.
            kestrel.Listen(address, server.RestPort, o => o.Protocols = HttpProtocols.Http1);
            kestrel.Listen(address, server.GrpcPort, o => o.Protocols = HttpProtocols.Http2);
        });

        // On SIGTERM Kestrel stops accepting and lets in-flight requests finish; each is bounded by Limits:TimeoutMs, so
        // the host waits a little longer than that before it aborts what is left (the default is 30 s, equal to it).
        var drain = TimeSpan.FromMilliseconds(limits.TimeoutMs) + TimeSpan.FromSeconds(5);
        services.PostConfigure<HostOptions>(o => o.ShutdownTimeout = o.ShutdownTimeout < drain ? drain : o.ShutdownTimeout);

        // Intra-op parallelism shares the cores with the engine workers: workers x kernel threads stays within them.
        Engine.Kernels.Cpu.EngineThreads.Count = Math.Max(1, Environment.ProcessorCount / limits.EffectiveConcurrency);

        builder.AddAutogradSecurity();
        services.AddSingleton(TimeProvider.System);
        services.AddSingleton<EngineGate>();
        services.AddSingleton<SessionStore>();
        services.AddHostedService<SessionSweeper>();
        services.AddSingleton<ModelRepository>();
        // The devices this process has: the CPU, and a GPU when one is found (or ILGPU's CPU accelerator standing in).
        services.AddSingleton(sp =>
        {
            var options = sp.GetRequiredService<IOptions<ServerOptions>>().Value;
            Gpu.GpuBackend? gpu = options.Gpu switch
            {
                "cpu-accelerator" => Gpu.GpuBackend.CreateCpuAccelerator(),
                "auto" => Gpu.GpuBackend.TryCreateCuda(),
                _ => null,
            };
            return new Engine.Backends.Devices(gpu, options.DefaultDevice);
        });
        services.AddSingleton<TransformService>();
        services.AddSingleton<Inference.InferenceService>();
        services.AddSingleton<ServiceMetrics>();

        services.AddGrpc(o =>
        {
            o.MaxReceiveMessageSize = (int)Math.Min(limits.MaxRequestBodyBytes, int.MaxValue);
            o.MaxSendMessageSize = null;
            o.EnableDetailedErrors = false;
            o.Interceptors.Add<ErrorInterceptor>();
        });
        // Grpc.AspNetCore's binder, with request marshallers that answer malformed protobuf with invalid_argument.
        services.RemoveAll(typeof(global::Grpc.AspNetCore.Server.Model.IServiceMethodProvider<>));
        services.AddSingleton(typeof(global::Grpc.AspNetCore.Server.Model.IServiceMethodProvider<>), typeof(MalformedMessageMethodProvider<>));
        services.AddGrpcReflection();
        services.AddGrpcHealthChecks().AddCheck<ReadinessCheck>("engine", tags: ["ready"]);
        services.AddHealthChecks();
        services.AddProblemDetails();
        services.AddExceptionHandler<ProblemDetailsExceptionHandler>();
        services.AddSingleton<MethodNotAllowed>();
        services.AddOpenApi(o => o.AddDocumentTransformer<OpenApi.ApiBodies>());
        services.ConfigureHttpJsonOptions(o => o.SerializerOptions.PropertyNamingPolicy = System.Text.Json.JsonNamingPolicy.SnakeCaseLower);
        return builder;
    }

    public static WebApplication MapAutogradService(this WebApplication app)
    {
        app.UseExceptionHandler();
        app.UseMiddleware<RestMetricsMiddleware>();
        // Kestrel enforces MaxRequestBodyBytes itself while a body is read; a declared length over it is refused here,
        // the same on every host (TestServer, a proxy's server), in a way a client that writes its whole body first can
        // read (OversizeBody). gRPC has its own limit (MaxReceiveMessageSize).
        long maxBody = app.Services.GetRequiredService<IOptions<LimitsOptions>>().Value.MaxRequestBodyBytes;
        var problems = app.Services.GetRequiredService<IProblemDetailsService>();
        app.Use((context, next) => context.Request.ContentLength is { } length && length > maxBody
                && context.Request.ContentType?.StartsWith("application/grpc", StringComparison.Ordinal) != true
            ? OversizeBody.RefuseAsync(context, length, maxBody, problems)
            : next(context));
        app.UseMiddleware<MethodNotAllowed>();
        app.UseGrpcWeb(new GrpcWebOptions { DefaultEnabled = true });
        app.UseAutogradSecurity();

        // The API (REST and gRPC alike) needs a caller when Security:Enabled; health, metrics and the API page do not.
        var api = app.MapCallerGroup();
        api.MapGrpcService<AutodiffGrpcService>();
        api.MapGrpcService<SessionsGrpcService>();
        api.MapGrpcService<ModelsGrpcService>();
        api.MapGrpcService<Inference.InferenceGrpcService>();
        api.MapGrpcService<Inference.GradientGrpcService>();
        app.MapGrpcHealthChecksService();
        app.MapGrpcReflectionService();

        api.MapTransformEndpoints();
        api.MapSessionEndpoints();
        api.MapModelEndpoints();
        api.MapCatalogEndpoints();
        api.MapInferenceModelEndpoints();
        app.MapInferenceServerEndpoints();

        app.MapHealthChecks("/healthz", new Microsoft.AspNetCore.Diagnostics.HealthChecks.HealthCheckOptions { Predicate = _ => false });
        app.MapHealthChecks("/readyz", new Microsoft.AspNetCore.Diagnostics.HealthChecks.HealthCheckOptions { ResponseWriter = ReadinessReport.WriteAsync });
        app.MapOpenApi();
        app.MapScalarApiReference();
        app.MapPlayground();
        app.MapMetrics("/metrics", app.Services.GetRequiredService<ServiceMetrics>().Registry);

        // Models registered before a restart are loaded before the first request.
        app.Services.GetRequiredService<ModelRepository>().Load();
        return app;
    }
}
