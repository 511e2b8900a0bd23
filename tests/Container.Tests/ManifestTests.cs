using System.Diagnostics;
using Xunit.Abstractions;

namespace AutogradService.Container.Tests;

/// <summary>
/// The deployment files say what the service needs: the Kubernetes base is checked against the Kubernetes schemas
/// (kubernetes-models, from npm) and, field by field, against the service's own limits and endpoints; so is compose.
/// </summary>
public sealed class ManifestTests(ITestOutputHelper output)
{
    private static readonly string K8s = Repo.File("deploy", "k8s");

    private static Yaml Manifest(string file) => Yaml.Load(Path.Combine(K8s, file));

    private static Yaml Deployment => Manifest("deployment.yaml");

    private static Yaml Container => Deployment["spec.template.spec.containers"].Named("autograd");

    private static string Env(string name) => Container["env"].Named(name)["value"].Str;

    /// <summary>Tensor memory the engine may hold at once: workers x per-request budget + sessions x per-session budget.</summary>
    private static long TensorBudget(Func<string, long> limit) =>
        limit("EngineConcurrency") * limit("MemoryBytesPerRequest") + limit("MaxOpenSessions") * limit("MemoryBytesPerSession");

    [Fact]
    public void Kustomization_lists_every_manifest()
    {
        var kustomization = Manifest("kustomization.yaml");
        Assert.Equal("Kustomization", kustomization["kind"].Str);
        var listed = kustomization["resources"].Items.Select(i => i.Str).Order().ToArray();
        var present = Directory.GetFiles(K8s, "*.yaml").Select(Path.GetFileName).Where(f => f != "kustomization.yaml").Order().ToArray();
        Assert.Equal(present, listed);
        var kinds = listed.SelectMany(f => Yaml.LoadAll(Path.Combine(K8s, f))).Select(d => d["kind"].Str).Order().ToArray();
        Assert.Equal(["Deployment", "HorizontalPodAutoscaler", "PersistentVolumeClaim", "PodDisruptionBudget", "Service", "Service"], kinds);
    }

    [Fact]
    public void Gpu_overlay_patches_the_base_deployment_with_one_gpu_and_auto_placement()
    {
        var overlay = Yaml.Load(Path.Combine(K8s, "gpu", "kustomization.yaml"));
        Assert.Equal("Kustomization", overlay["kind"].Str);
        Assert.Equal([".."], overlay["resources"].Items.Select(i => i.Str));
        var patchFile = Assert.Single(overlay["patches"].Items)["path"].Str;
        var patch = Yaml.Load(Path.Combine(K8s, "gpu", patchFile));
        // A strategic merge patch applies to the base's object by kind and name, and its container by name.
        Assert.Equal((Deployment["kind"].Str, Deployment["metadata.name"].Str), (patch["kind"].Str, patch["metadata.name"].Str));
        var container = patch["spec.template.spec.containers"].Named("autograd");
        var limits = Assert.IsType<Dictionary<object, object?>>(container["resources.limits"].Value); // the key has dots in it
        Assert.Equal("1", limits["nvidia.com/gpu"]);
        Assert.Equal("auto", container["env"].Named("Server__DefaultDevice")["value"].Str);
    }

    [Fact]
    public void Deployment_runs_non_root_on_a_read_only_root_with_tmp_and_models_writable()
    {
        var pod = Deployment["spec.template.spec"];
        Assert.True(pod["securityContext.runAsNonRoot"].Bool);
        Assert.NotEqual(0, pod["securityContext.runAsUser"].Long);
        Assert.True(pod.Has("securityContext.fsGroup"), "fsGroup makes the model volume writable by the service's user");
        Assert.True(Container["securityContext.readOnlyRootFilesystem"].Bool);
        Assert.False(Container["securityContext.allowPrivilegeEscalation"].Bool);
        Assert.Contains("ALL", Container["securityContext.capabilities.drop"].Items.Select(i => i.Str));

        var mounts = Container["volumeMounts"].Items.ToDictionary(m => m["mountPath"].Str, m => m["name"].Str);
        var volumes = pod["volumes"];
        Assert.True(volumes.Named(mounts["/tmp"]).Has("emptyDir"), "/tmp is an emptyDir");
        var modelPath = Env("Server__ModelRepositoryPath");
        var claim = volumes.Named(mounts[modelPath])["persistentVolumeClaim.claimName"].Str;
        var pvc = Manifest("pvc.yaml");
        Assert.Equal(claim, pvc["metadata.name"].Str);
        Assert.Contains("ReadWriteMany", pvc["spec.accessModes"].Items.Select(i => i.Str));
    }

    [Fact]
    public void Deployment_resources_cover_the_engine_memory_limits()
    {
        var defaults = Repo.Defaults("Limits");
        // The manifest's limits are the service's defaults, with the worker count pinned to the requested cores.
        foreach (var name in new[] { "MemoryBytesPerRequest", "MemoryBytesPerSession", "MaxOpenSessions", "TimeoutMs" })
            Assert.Equal(defaults.GetProperty(name).GetInt64(), long.Parse(Env("Limits__" + name), System.Globalization.CultureInfo.InvariantCulture));
        long workers = long.Parse(Env("Limits__EngineConcurrency"), System.Globalization.CultureInfo.InvariantCulture);
        var resources = Container["resources"];
        Assert.Equal(workers, Quantity.Cores(resources["requests.cpu"].Str));

        long budget = TensorBudget(n => long.Parse(Env("Limits__" + n), System.Globalization.CultureInfo.InvariantCulture));
        Assert.Equal(3L << 30, budget); // 2 x 512 MiB + 32 x 64 MiB
        long limit = Quantity.Bytes(resources["limits.memory"].Str);
        long request = Quantity.Bytes(resources["requests.memory"].Str);
        // The runtime, request bodies and responses need room beside the tensors, but not another budget's worth.
        Assert.InRange(limit - budget, 512L << 20, 2L << 30);
        Assert.Equal(limit, request);
    }

    [Fact]
    public void Deployment_probes_the_health_endpoints_and_outlasts_the_request_timeout()
    {
        var ports = Container["ports"].Items.ToDictionary(p => p["name"].Str, p => p["containerPort"].Long);
        Assert.Equal(long.Parse(Env("Server__RestPort"), System.Globalization.CultureInfo.InvariantCulture), ports["http"]);
        Assert.Equal(long.Parse(Env("Server__GrpcPort"), System.Globalization.CultureInfo.InvariantCulture), ports["grpc"]);
        Assert.Equal("0.0.0.0", Env("Server__BindAddress"));

        Assert.Equal("/healthz", Container["livenessProbe.httpGet.path"].Str);
        Assert.Equal("http", Container["livenessProbe.httpGet.port"].Str);
        Assert.Equal("/readyz", Container["readinessProbe.httpGet.path"].Str);
        Assert.Equal("/healthz", Container["startupProbe.httpGet.path"].Str);

        // The pod gets SIGTERM after preStop; the service then drains for up to TimeoutMs + 5 s (ServiceSetup).
        long timeoutSeconds = long.Parse(Env("Limits__TimeoutMs"), System.Globalization.CultureInfo.InvariantCulture) / 1000;
        long preStop = Container.Has("lifecycle.preStop.sleep.seconds") ? Container["lifecycle.preStop.sleep.seconds"].Long : 0;
        long grace = Deployment["spec.template.spec.terminationGracePeriodSeconds"].Long;
        Assert.True(grace > preStop + timeoutSeconds + 5, $"terminationGracePeriodSeconds {grace} must exceed {preStop} + {timeoutSeconds} + 5");
        Assert.Equal("0", Deployment["spec.strategy.rollingUpdate.maxUnavailable"].Str);
    }

    [Fact]
    public void Services_select_the_pods_rest_plainly_and_grpc_headless()
    {
        var podLabels = Deployment["spec.template.metadata.labels"].StringMap;
        var services = Yaml.LoadAll(Path.Combine(K8s, "service.yaml")).Concat(Yaml.LoadAll(Path.Combine(K8s, "service-grpc.yaml"))).ToArray();
        foreach (var s in services)
            Assert.All(s["spec.selector"].StringMap, kv => Assert.Equal(kv.Value, podLabels[kv.Key]));

        var rest = services.Single(s => s["spec.ports"].Items.Any(p => p["targetPort"].Str == "http"));
        Assert.False(rest.Has("spec.clusterIP") && rest["spec.clusterIP"].Str == "None");
        // REST sessions live in one pod: a client's calls stay on it for the session idle time.
        Assert.Equal("ClientIP", rest["spec.sessionAffinity"].Str);
        Assert.Equal(Repo.Defaults("Limits").GetProperty("SessionIdleSeconds").GetInt64(), rest["spec.sessionAffinityConfig.clientIP.timeoutSeconds"].Long);

        var grpc = services.Single(s => s["spec.ports"].Items.Any(p => p["targetPort"].Str == "grpc"));
        Assert.Equal("None", grpc["spec.clusterIP"].Str);
        Assert.Equal("kubernetes.io/h2c", grpc["spec.ports.0.appProtocol"].Str);
        Assert.Contains("HTTP/2", File.ReadAllText(Path.Combine(K8s, "service-grpc.yaml")));
    }

    [Fact]
    public void Autoscaler_and_disruption_budget_fit_the_deployment()
    {
        var name = Deployment["metadata.name"].Str;
        var hpa = Manifest("hpa.yaml");
        Assert.Equal("autoscaling/v2", hpa["apiVersion"].Str);
        Assert.Equal("Deployment", hpa["spec.scaleTargetRef.kind"].Str);
        Assert.Equal(name, hpa["spec.scaleTargetRef.name"].Str);
        long min = hpa["spec.minReplicas"].Long;
        Assert.True(min >= 2, "two replicas at least, so a disruption leaves one serving");
        Assert.True(hpa["spec.maxReplicas"].Long > min);
        Assert.Equal("cpu", hpa["spec.metrics.0.resource.name"].Str);

        var pdb = Manifest("pdb.yaml");
        Assert.Equal("policy/v1", pdb["apiVersion"].Str);
        Assert.Equal(Deployment["spec.selector.matchLabels"].StringMap, pdb["spec.selector.matchLabels"].StringMap);
        Assert.True(pdb["spec.minAvailable"].Long < min, "the budget must allow a voluntary disruption at the minimum size");
    }

    [Fact]
    public void Compose_runs_the_image_with_its_volume_limits_and_prometheus()
    {
        var compose = Yaml.Load(Repo.File("deploy", "compose.yaml"));
        var svc = compose["services.autograd"];
        Assert.Equal("Dockerfile", svc["build.dockerfile"].Str);
        var env = svc["environment"].StringMap;
        var models = env["Server__ModelRepositoryPath"];
        Assert.Contains(svc["volumes"].Items, v => v.Str.EndsWith(":" + models, StringComparison.Ordinal));
        Assert.True(svc["read_only"].Bool);

        long budget = TensorBudget(n => long.Parse(env["Limits__" + n], System.Globalization.CultureInfo.InvariantCulture));
        long memory = Quantity.ComposeBytes(svc["deploy.resources.limits.memory"].Str);
        Assert.InRange(memory - budget, 512L << 20, 2L << 30);
        Assert.Equal(double.Parse(env["Limits__EngineConcurrency"], System.Globalization.CultureInfo.InvariantCulture),
            double.Parse(svc["deploy.resources.limits.cpus"].Str, System.Globalization.CultureInfo.InvariantCulture));

        var prometheus = Yaml.Load(Repo.File("deploy", "prometheus.yml"));
        var job = prometheus["scrape_configs"].Items.Single(j => j["job_name"].Str == "autograd");
        Assert.Equal("/metrics", job["metrics_path"].Str);
        Assert.Contains("autograd:" + env["Server__RestPort"], job["static_configs.0.targets"].Items.Select(t => t.Str));
        Assert.Contains(compose["services.prometheus.volumes"].Items, v => v.Str.StartsWith("./prometheus.yml:", StringComparison.Ordinal));
    }

    [Fact]
    public async Task Kubernetes_base_is_valid_against_the_kubernetes_schemas()
    {
        var tool = Repo.File("tests", "Container.Tests", "k8s-validate");
        if (!Directory.Exists(Path.Combine(tool, "node_modules")))
        {
            if (!DockerHost.InCi && Environment.GetEnvironmentVariable("AUTOGRAD_SKIP_CONTAINER") == "1" && !OnPath("npm"))
            {
                output.WriteLine("AUTOGRAD_SKIP_CONTAINER=1 and no npm: the schema validation returns without running (CI never does this).");
                return;
            }
            var (install, installLog) = await RunAsync("npm", ["ci", "--no-audit", "--no-fund"], tool, TimeSpan.FromMinutes(5));
            Assert.True(install == 0, "npm ci in tests/Container.Tests/k8s-validate failed:\n" + installLog);
        }
        var (exit, log) = await RunAsync("node", [Path.Combine(tool, "validate.mjs"), K8s], tool, TimeSpan.FromMinutes(1));
        output.WriteLine(log);
        Assert.True(exit == 0, log);
        Assert.Contains("all objects valid", log);
    }

    private static bool OnPath(string tool) =>
        (Environment.GetEnvironmentVariable("PATH") ?? "").Split(Path.PathSeparator).Any(d => File.Exists(Path.Combine(d, tool)));

    private static async Task<(int Exit, string Log)> RunAsync(string file, string[] args, string directory, TimeSpan timeout)
    {
        var start = new ProcessStartInfo(file) { WorkingDirectory = directory, RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var a in args) start.ArgumentList.Add(a);
        using var process = Process.Start(start)!;
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        using var cts = new CancellationTokenSource(timeout);
        try
        {
            await process.WaitForExitAsync(cts.Token);
        }
        catch (OperationCanceledException)
        {
            process.Kill(entireProcessTree: true);
            throw new TimeoutException($"{file} {string.Join(' ', args)} ran past {timeout}");
        }
        return (process.ExitCode, await stdout + await stderr);
    }
}
