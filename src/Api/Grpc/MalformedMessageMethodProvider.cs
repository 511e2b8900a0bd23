using System.Reflection;
using AutogradService.Api.Errors;
using AutogradService.Engine;
using Google.Protobuf;
using Grpc.AspNetCore.Server.Model;
using Grpc.Core;

namespace AutogradService.Api.Grpc;

/// <summary>
/// Binds gRPC services as Grpc.AspNetCore's own binder does (the generated <c>BindService</c>, the service's methods,
/// their attributes as endpoint metadata), with one difference: every request marshaller turns a malformed or
/// over-nested protobuf message into <c>invalid_argument</c>. Grpc.AspNetCore deserializes a unary request before any
/// interceptor runs, so without this a client's bad bytes reach the caller as UNKNOWN, "exception was thrown by handler".
/// </summary>
public sealed class MalformedMessageMethodProvider<TService> : IServiceMethodProvider<TService> where TService : class
{
    public void OnServiceMethodDiscovery(ServiceMethodProviderContext<TService> context)
    {
        var bindAttribute = typeof(TService).GetCustomAttribute<BindServiceMethodAttribute>(inherit: true);
        if (bindAttribute is null) return;
        var bind = bindAttribute.BindType.GetMethods(BindingFlags.Public | BindingFlags.NonPublic | BindingFlags.Static)
            .Single(m => m.Name == bindAttribute.BindMethodName && m.GetParameters() is [var binder, _] && binder.ParameterType == typeof(ServiceBinderBase));
        bind.Invoke(null, [new Binder(context), null]);
    }

    /// <summary>Request bytes to a message; a protobuf decoding failure is the client's error.</summary>
    internal static Marshaller<T> Checked<T>(Marshaller<T> inner) => new(inner.ContextualSerializer, context =>
    {
        try
        {
            return inner.ContextualDeserializer(context);
        }
        catch (InvalidProtocolBufferException e)
        {
            throw ErrorInterceptor.ToRpcException(new ApiError(ErrorCodes.InvalidArgument, $"malformed protobuf message: {e.Message}"));
        }
    });

    private sealed class Binder(ServiceMethodProviderContext<TService> context) : ServiceBinderBase
    {
        public override void AddMethod<TRequest, TResponse>(Method<TRequest, TResponse> method, UnaryServerMethod<TRequest, TResponse>? handler) =>
            context.AddUnaryMethod(Wrap(method), Metadata(method), Invoker<UnaryServerMethod<TService, TRequest, TResponse>>(method));

        public override void AddMethod<TRequest, TResponse>(Method<TRequest, TResponse> method, ServerStreamingServerMethod<TRequest, TResponse>? handler) =>
            context.AddServerStreamingMethod(Wrap(method), Metadata(method), Invoker<ServerStreamingServerMethod<TService, TRequest, TResponse>>(method));

        public override void AddMethod<TRequest, TResponse>(Method<TRequest, TResponse> method, ClientStreamingServerMethod<TRequest, TResponse>? handler) =>
            context.AddClientStreamingMethod(Wrap(method), Metadata(method), Invoker<ClientStreamingServerMethod<TService, TRequest, TResponse>>(method));

        public override void AddMethod<TRequest, TResponse>(Method<TRequest, TResponse> method, DuplexStreamingServerMethod<TRequest, TResponse>? handler) =>
            context.AddDuplexStreamingMethod(Wrap(method), Metadata(method), Invoker<DuplexStreamingServerMethod<TService, TRequest, TResponse>>(method));

        private static Method<TRequest, TResponse> Wrap<TRequest, TResponse>(Method<TRequest, TResponse> method) =>
            new(method.Type, method.ServiceName, method.Name, Checked(method.RequestMarshaller), method.ResponseMarshaller);

        /// <summary>The service's implementation of the method, called on the instance each call activates.</summary>
        private static TDelegate Invoker<TDelegate>(IMethod method) where TDelegate : Delegate
        {
            var parameters = typeof(TDelegate).GetMethod("Invoke")!.GetParameters().Skip(1).Select(p => p.ParameterType).ToArray();
            var implementation = typeof(TService).GetMethod(method.Name, BindingFlags.Public | BindingFlags.Instance, parameters)
                ?? throw new InvalidOperationException($"{typeof(TService).Name} has no method {method.Name}");
            return (TDelegate)Delegate.CreateDelegate(typeof(TDelegate), implementation);
        }

        /// <summary>What endpoint metadata the default binder gives: the service's attributes, then the method's ([Authorize] and the like).</summary>
        private static List<object> Metadata(IMethod method)
        {
            var metadata = new List<object>(typeof(TService).GetCustomAttributes(inherit: true));
            var implementation = typeof(TService).GetMethods(BindingFlags.Public | BindingFlags.Instance).FirstOrDefault(m => m.Name == method.Name);
            if (implementation is not null) metadata.AddRange(implementation.GetCustomAttributes(inherit: true));
            return metadata;
        }
    }
}
