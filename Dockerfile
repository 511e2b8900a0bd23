# AutogradService: REST + gRPC-Web on 8080, gRPC (h2c) on 8081.
#   docker build -t autograd-service .
#   docker run --rm -p 8080:8080 -p 8081:8081 -v autograd-models:/var/lib/autograd/models autograd-service
# The bases are build arguments so a machine without a registry can substitute its own images
# (deploy/build-image-offline.sh makes them from Debian packages and the local .NET SDK).
ARG SDK_IMAGE=mcr.microsoft.com/dotnet/sdk:10.0
ARG RUNTIME_IMAGE=mcr.microsoft.com/dotnet/aspnet:10.0

FROM ${SDK_IMAGE} AS build
WORKDIR /src
# Restore from the project files alone, so a change in the sources reuses the restored layer.
COPY Directory.Build.props Directory.Packages.props .editorconfig ./
COPY src/Engine/AutogradService.Engine.csproj src/Engine/
COPY src/Contracts/AutogradService.Contracts.csproj src/Contracts/
COPY src/Onnx/AutogradService.Onnx.csproj src/Onnx/
COPY src/Gpu/AutogradService.Gpu.csproj src/Gpu/
COPY src/Api/AutogradService.Api.csproj src/Api/
RUN dotnet restore src/Api/AutogradService.Api.csproj
COPY src/ src/
RUN dotnet publish src/Api/AutogradService.Api.csproj -c Release --no-restore -o /app -p:UseAppHost=false \
 && mkdir -p /staging/var/lib/autograd/models

FROM ${RUNTIME_IMAGE} AS runtime
# The official images' non-root "app" user; numeric, so a base without that passwd entry works the same.
ARG APP_UID=1654
WORKDIR /app
# Application files stay owned by root (read-only to the service); only the model repository is the service's.
COPY --from=build /app ./
COPY --from=build --chown=${APP_UID}:${APP_UID} /staging/var/lib/autograd /var/lib/autograd

# Configuration is the environment: Server__* and Limits__* override src/Api/appsettings.json, e.g.
#   -e Limits__MemoryBytesPerRequest=268435456 -e Limits__TimeoutMs=10000 -e Limits__EngineConcurrency=2
# ASPNETCORE_HTTP_PORTS is cleared because the service binds its own two endpoints from Server__*.
ENV ASPNETCORE_ENVIRONMENT=Production \
    ASPNETCORE_HTTP_PORTS= \
    DOTNET_RUNNING_IN_CONTAINER=true \
    HOME=/tmp \
    Server__BindAddress=0.0.0.0 \
    Server__RestPort=8080 \
    Server__GrpcPort=8081 \
    Server__ModelRepositoryPath=/var/lib/autograd/models

VOLUME /var/lib/autograd/models
EXPOSE 8080 8081
USER ${APP_UID}:${APP_UID}

# Neither the official runtime image nor the offline stand-in has curl, so the service probes itself:
# `--healthcheck` reads the same Server__* settings and GETs /healthz on loopback.
HEALTHCHECK --interval=15s --timeout=5s --start-period=20s --retries=3 \
  CMD ["dotnet", "/app/AutogradService.Api.dll", "--healthcheck"]

# SIGTERM (docker stop, Kubernetes) drains in-flight requests for up to Limits:TimeoutMs + 5 s, then exits 0:
# give the container at least that long (docker stop -t 40, terminationGracePeriodSeconds).
STOPSIGNAL SIGTERM
ENTRYPOINT ["dotnet", "/app/AutogradService.Api.dll"]
