using System.Text.Json.Nodes;
using BatchRender.Core.Configuration;

namespace BatchRender.Infra.Tests;

/// <summary>The rendered overlays (what azd applies) agree with the code and with the Bicep.</summary>
public class KubernetesTests
{
    public static TheoryData<string> Overlays() => new(RenderedOverlay.Overlays);

    /// <summary>Every environment variable the worker container gets: its env entries and its envFrom ConfigMaps.</summary>
    private static Dictionary<string, string> WorkerEnvironment(RenderedOverlay overlay)
    {
        var container = overlay.WorkerContainer;
        var environment = new Dictionary<string, string>();
        foreach (var source in container["envFrom"]?.AsArray() ?? [])
        {
            var name = source!["configMapRef"]!["name"].Str();
            var map = overlay.Resources.Single(r => r["kind"].Str() == "ConfigMap" && r["metadata"]!["name"].Str() == name);
            foreach (var (key, value) in map["data"]!.AsObject()) environment[key] = value.Str();
        }
        foreach (var entry in container["env"]?.AsArray() ?? [])
        {
            var name = entry!["name"].Str();
            var reference = entry["valueFrom"]?["configMapKeyRef"];
            if (reference is null) { environment[name] = entry["value"].Str(); continue; }
            var map = overlay.Resources.Single(r => r["kind"].Str() == "ConfigMap" && r["metadata"]!["name"].Str() == reference["name"].Str());
            var key = reference["key"].Str();
            Assert.True(map["data"]!.AsObject().ContainsKey(key), $"{overlay.Name}: env {name} refers to missing key {key} of {reference["name"]}");
            environment[name] = map["data"]![key].Str();
        }
        return environment;
    }

    [Theory]
    [MemberData(nameof(Overlays))]
    public async Task Every_worker_setting_names_a_real_option_and_binds(string name)
    {
        var overlay = await RenderedOverlay.GetAsync(name);
        var environment = WorkerEnvironment(overlay);
        var problems = environment.Keys.Select(CodeSettings.Problem).OfType<string>().ToList();
        Assert.True(problems.Count == 0, string.Join('\n', problems));
        foreach (var required in CodeSettings.RequiredForWorker)
            Assert.True(environment.ContainsKey(required), $"{name}: the worker lacks {required}");
        Assert.Empty(CodeSettings.BindAndValidate(environment));
        Assert.Equal(nameof(TransportKind.ServiceBus), environment["Transport__Kind"]);

        // The connection values are exactly what azd writes from the Bicep outputs.
        foreach (var key in CodeSettings.ConnectionSections.SelectMany(s => s.Value.Select(k => $"{s.Key}__{k}")))
            Assert.Equal(overlay.EnvFile[key], environment[key]);
    }

    [Theory]
    [MemberData(nameof(Overlays))]
    public async Task Worker_settings_agree_with_the_bicep(string name)
    {
        var bicep = await Bicep.GetAsync();
        var environment = WorkerEnvironment(await RenderedOverlay.GetAsync(name));
        Assert.Equal(bicep.DefaultOf("renderQueueName").Str(), environment["Transport__QueueName"]);
        Assert.Equal(bicep.DefaultOf("maxDeliveryCount")!.GetValue<int>(), int.Parse(environment["Transport__MaxDeliveryCount"]));
        Assert.Equal(TimeSpan.FromSeconds(bicep.DefaultOf("lockDurationSeconds")!.GetValue<int>()),
            TimeSpan.Parse(environment["Transport__LockDuration"]));
        Assert.Equal(bicep.DefaultOf("manifestsContainer").Str(), environment["Blobs__ManifestsContainer"]);
        Assert.Equal(bicep.DefaultOf("rendersContainer").Str(), environment["Blobs__RendersContainer"]);
        Assert.Equal(bicep.DefaultOf("jobsTable").Str(), environment["State__JobsTable"]);
        Assert.Equal(bicep.DefaultOf("itemsTable").Str(), environment["State__ItemsTable"]);

        // The environment's parameter file does not override what the ConfigMap assumes.
        var parameters = bicep.ParametersOf($"bicep/env/{name}.bicepparam");
        foreach (var fixedName in new[] { "renderQueueName", "maxDeliveryCount", "lockDurationSeconds", "manifestsContainer", "rendersContainer", "workerNamespace", "workerServiceAccountName", "gpuPoolName" })
            Assert.False(parameters.ContainsKey(fixedName), $"{name}.bicepparam overrides {fixedName}, which infra/k8s hard-codes");
        Assert.Equal(name, parameters["environmentType"]!["value"].Str());
    }

    [Theory]
    [MemberData(nameof(Overlays))]
    public async Task Probes_use_the_workers_health_endpoints_and_port(string name)
    {
        var overlay = await RenderedOverlay.GetAsync(name);
        var container = overlay.WorkerContainer;
        var environment = WorkerEnvironment(overlay);
        var healthPort = int.Parse(environment["Worker__HealthPort"]);
        Assert.Equal(new WorkerOptions().HealthPort, healthPort);

        var ports = container["ports"]!.AsArray().ToDictionary(p => p!["name"].Str(), p => int.Parse(p!["containerPort"].Str()));
        int PortOf(JsonNode probe)
        {
            var port = probe["httpGet"]!["port"].Str();
            return int.TryParse(port, out var number) ? number : ports[port];
        }
        Assert.Equal(HealthEndpoints.Live, container["livenessProbe"]!["httpGet"]!["path"].Str());
        Assert.Equal(HealthEndpoints.Ready, container["readinessProbe"]!["httpGet"]!["path"].Str());
        Assert.Equal(HealthEndpoints.Live, container["startupProbe"]!["httpGet"]!["path"].Str());
        foreach (var probe in new[] { "livenessProbe", "readinessProbe", "startupProbe" })
            Assert.Equal(healthPort, PortOf(container[probe]!));
    }

    [Theory]
    [MemberData(nameof(Overlays))]
    public async Task Worker_runs_on_the_gpu_pool_with_a_gpu(string name)
    {
        var bicep = await Bicep.GetAsync();
        var overlay = await RenderedOverlay.GetAsync(name);
        var resources = overlay.WorkerContainer["resources"]!;
        Assert.True(int.Parse(resources["limits"]!["nvidia.com/gpu"].Str()) >= 1, "the worker must request a GPU");
        Assert.Equal(resources["limits"]!["nvidia.com/gpu"].Str(), resources["requests"]!["nvidia.com/gpu"].Str());
        Assert.NotNull(resources["requests"]!["cpu"]);
        Assert.NotNull(resources["requests"]!["memory"]);

        // gpuTaint is "key=value:Effect"; the worker and the device plugin tolerate it and select the pool.
        var taint = bicep.Template["variables"]!["gpuTaint"].Str();
        var (key, rest) = (taint.Split('=')[0], taint.Split('=')[1]);
        var (value, effect) = (rest.Split(':')[0], rest.Split(':')[1]);
        Assert.Equal("[variables('gpuTaint')]", bicep.ModuleInputs("aks")["gpuTaint"]!["value"]!.ToString());
        Assert.Equal("[parameters('gpuPoolName')]", bicep.ModuleInputs("aks")["gpuPoolName"]!["value"]!.ToString());
        var pool = bicep.DefaultOf("gpuPoolName").Str();

        foreach (var workload in new[] { overlay.WorkerDeploymentResource, overlay.Single("DaemonSet", "nvidia-device-plugin") })
        {
            var podSpec = workload["spec"]!["template"]!["spec"]!;
            Assert.Equal(pool, podSpec["nodeSelector"]!["kubernetes.azure.com/agentpool"].Str());
            Assert.Contains(podSpec["tolerations"]!.AsArray(), t =>
                t!["key"].Str() == key && t["effect"].Str() == effect
                && (t["operator"].Str() == "Exists" || t["value"].Str() == value));
        }
    }

    [Theory]
    [MemberData(nameof(Overlays))]
    public async Task Grace_period_outlasts_the_drain_timeout(string name)
    {
        var overlay = await RenderedOverlay.GetAsync(name);
        var grace = TimeSpan.FromSeconds(int.Parse(overlay.WorkerDeploymentResource["spec"]!["template"]!["spec"]!["terminationGracePeriodSeconds"].Str()));
        var drain = TimeSpan.Parse(WorkerEnvironment(overlay)["Worker__DrainTimeout"]);
        Assert.True(grace > drain, $"terminationGracePeriodSeconds {grace} must exceed Worker:DrainTimeout {drain}");
        Assert.True(grace > new WorkerOptions().DrainTimeout);
    }

    [Theory]
    [MemberData(nameof(Overlays))]
    public async Task Workload_identity_is_wired_to_the_bicep_identity(string name)
    {
        var overlay = await RenderedOverlay.GetAsync(name);
        var serviceAccount = overlay.Single("ServiceAccount");
        Assert.Equal(overlay.EnvFile["AZURE_WORKER_CLIENT_ID"],
            serviceAccount["metadata"]!["annotations"]!["azure.workload.identity/client-id"].Str());
        Assert.Equal("true", overlay.WorkerDeploymentResource["spec"]!["template"]!["metadata"]!["labels"]!["azure.workload.identity/use"].Str());
    }

    [Theory]
    [MemberData(nameof(Overlays))]
    public async Task Keda_scales_the_deployment_on_the_render_queue(string name)
    {
        var bicep = await Bicep.GetAsync();
        var overlay = await RenderedOverlay.GetAsync(name);
        var scaledObject = overlay.Single("ScaledObject")["spec"]!;
        var deployment = overlay.WorkerDeploymentResource;

        Assert.Equal("Deployment", scaledObject["scaleTargetRef"]!["kind"].Str());
        Assert.Equal(deployment["metadata"]!["name"].Str(), scaledObject["scaleTargetRef"]!["name"].Str());
        Assert.Equal("0", scaledObject["minReplicaCount"].Str());
        var max = int.Parse(scaledObject["maxReplicaCount"].Str());
        var gpuMaxCount = bicep.ParametersOf($"bicep/env/{name}.bicepparam")["gpuMaxCount"]!["value"]!.GetValue<int>();
        Assert.InRange(max, 1, gpuMaxCount);
        Assert.Null(deployment["spec"]!["replicas"]); // KEDA owns the count

        var trigger = scaledObject["triggers"]!.AsArray().Single()!;
        Assert.Equal("azure-servicebus", trigger["type"].Str());
        Assert.Equal(bicep.DefaultOf("renderQueueName").Str(), trigger["metadata"]!["queueName"].Str());
        Assert.Equal(new TransportOptions().QueueName, trigger["metadata"]!["queueName"].Str());
        Assert.Equal(overlay.EnvFile["AZURE_SERVICEBUS_NAMESPACE"], trigger["metadata"]!["namespace"].Str());
        Assert.Equal(WorkerEnvironment(overlay)["Worker__BatchSize"], trigger["metadata"]!["messageCount"].Str());

        var auth = overlay.Single("TriggerAuthentication");
        Assert.Equal(auth["metadata"]!["name"].Str(), trigger["authenticationRef"]!["name"].Str());
        Assert.Equal("azure-workload", auth["spec"]!["podIdentity"]!["provider"].Str());
        Assert.Equal(overlay.EnvFile["AZURE_KEDA_CLIENT_ID"], auth["spec"]!["podIdentity"]!["identityId"].Str());
    }

    [Theory]
    [MemberData(nameof(Overlays))]
    public async Task No_placeholder_survives_rendering(string name)
    {
        var overlay = await RenderedOverlay.GetAsync(name);
        var text = string.Join('\n', overlay.Resources.Select(r => r.ToJsonString()));
        foreach (var placeholder in new[] { "AZURE_WORKER_CLIENT_ID", "AZURE_KEDA_CLIENT_ID", "AZURE_SERVICEBUS_NAMESPACE" })
        {
            // The keys stay in the generated ConfigMap; as values they must all have been replaced.
            Assert.DoesNotContain($"\"{placeholder}\"", text.Replace($"\"{placeholder}\":", ""));
        }
    }
}
