using System.Text.Json.Nodes;
using System.Text.RegularExpressions;
using System.Xml;
using BatchRender.Core.Configuration;

namespace BatchRender.Infra.Tests;

/// <summary>
/// What a deployment of each environment (bicep/env/*.bicepparam) would create, predicted offline by
/// `bicep snapshot`, checked against the code's option classes and the rendered Kubernetes overlay of the same
/// environment.
/// </summary>
public class DeploymentSnapshotTests
{
    public static TheoryData<string> Environments() => new(Bicep.SnapshotEnvironments);

    private static string LastSegment(JsonObject resource) => resource["name"]!.ToString().Split('/')[^1];

    [Theory]
    [MemberData(nameof(Environments))]
    public async Task Storage_and_queue_names_are_the_codes(string environment)
    {
        var bicep = await Bicep.GetAsync();
        var blobs = new BlobOptions();
        var state = new StateOptions();
        var transport = new TransportOptions();
        Assert.Equal(
            new[] { blobs.ManifestsContainer, blobs.RendersContainer, blobs.SchedulesContainer }.Order(),
            bicep.Predicted(environment, "Microsoft.Storage/storageAccounts/blobServices/containers")
                .Where(c => !c["name"]!.ToString().StartsWith("stfn")).Select(LastSegment).Order());
        Assert.Equal(new[] { state.JobsTable, state.ItemsTable, state.SchedulesTable }.Order(),
            bicep.Predicted(environment, "Microsoft.Storage/storageAccounts/tableServices/tables").Select(LastSegment).Order());
        Assert.Equal(new[] { transport.QueueName, transport.PoisonQueueName }.Order(),
            bicep.Predicted(environment, "Microsoft.Storage/storageAccounts/queueServices/queues").Select(LastSegment).Order());
        Assert.Equal(transport.QueueName, LastSegment(bicep.Predicted(environment, "Microsoft.ServiceBus/namespaces/queues").Single()));
    }

    [Theory]
    [MemberData(nameof(Environments))]
    public async Task Service_bus_queue_locks_and_retries_as_the_worker_expects(string environment)
    {
        var bicep = await Bicep.GetAsync();
        var queue = bicep.Predicted(environment, "Microsoft.ServiceBus/namespaces/queues").Single()["properties"]!;
        var worker = WorkerEnvironment(await RenderedOverlay.GetAsync(environment));
        var transport = new TransportOptions();

        var lockDuration = XmlConvert.ToTimeSpan(queue["lockDuration"]!.ToString());
        Assert.Equal(transport.LockDuration, lockDuration);
        Assert.Equal(TimeSpan.Parse(worker["Transport__LockDuration"]), lockDuration);
        Assert.Equal(transport.MaxDeliveryCount + 1, queue["maxDeliveryCount"]!.GetValue<int>());   // the worker keeps the limit
        Assert.Equal(int.Parse(worker["Transport__MaxDeliveryCount"]) + 1, queue["maxDeliveryCount"]!.GetValue<int>());
        Assert.True(queue["requiresDuplicateDetection"]!.GetValue<bool>());
        Assert.True(XmlConvert.ToTimeSpan(queue["duplicateDetectionHistoryTimeWindow"]!.ToString()) >= TimeSpan.FromMinutes(10));
        Assert.True(queue["deadLetteringOnMessageExpiration"]!.GetValue<bool>());

        var ns = bicep.Predicted(environment, "Microsoft.ServiceBus/namespaces").Single();
        Assert.True(ns["properties"]!["disableLocalAuth"]!.GetValue<bool>());
        Assert.NotEqual("Basic", ns["sku"]!["name"]!.ToString()); // Basic has no duplicate detection
    }

    [Theory]
    [MemberData(nameof(Environments))]
    public async Task Functions_app_settings_bind_to_the_option_classes(string environment)
    {
        var bicep = await Bicep.GetAsync();
        var settings = bicep.Predicted(environment, "Microsoft.Web/sites/config").Single()["properties"]!.AsObject()
            .ToDictionary(p => p.Key, p => p.Value!.ToString());
        var hostSettings = new[] { "AzureWebJobsStorage__accountName", "AzureWebJobsStorage__credential", "APPLICATIONINSIGHTS_CONNECTION_STRING", "APPLICATIONINSIGHTS_AUTHENTICATION_STRING" };
        var codeSettings = settings.Where(p => !hostSettings.Contains(p.Key)).ToDictionary(p => p.Key, p => p.Value);

        // App Service (Flex Consumption included) accepts only these characters in setting names.
        Assert.All(settings.Keys, key => Assert.Matches("^[A-Za-z0-9._]+$", key));
        var problems = codeSettings.Keys.Select(CodeSettings.Problem).OfType<string>().ToList();
        Assert.True(problems.Count == 0, string.Join('\n', problems));
        foreach (var required in CodeSettings.RequiredForFunctions)
            Assert.True(codeSettings.ContainsKey(required), $"the Functions app settings lack {required}");

        // Endpoints are known only after deployment (module outputs); everything else is a literal now.
        var literal = codeSettings.ToDictionary(p => p.Key, p => p.Value.StartsWith('[') ? "https://known-after-deployment.example/" : p.Value);
        Assert.Empty(CodeSettings.BindAndValidate(literal));
        var transport = CodeSettings.Bind<TransportOptions>(literal, ConfigSections.Transport);
        Assert.Equal(TransportKind.ServiceBus, transport.Kind);
        Assert.Equal(new TransportOptions().LockDuration, transport.LockDuration);
        Assert.Equal(new TransportOptions().MaxDeliveryCount, transport.MaxDeliveryCount);

        // The ingest side and the workers agree on every setting both read.
        var worker = WorkerEnvironment(await RenderedOverlay.GetAsync(environment));
        foreach (var key in codeSettings.Keys.Where(worker.ContainsKey).Where(k => !codeSettings[k].StartsWith('[')))
            Assert.True(worker[key] == codeSettings[key], $"{key}: Functions '{codeSettings[key]}', worker '{worker[key]}'");
        Assert.Equal("managedidentity", settings["AzureWebJobsStorage__credential"]);
        Assert.DoesNotContain(settings.Values, v => v.Contains("AccountKey", StringComparison.OrdinalIgnoreCase));
    }

    [Theory]
    [MemberData(nameof(Environments))]
    public async Task Federated_credentials_name_the_service_accounts_that_use_them(string environment)
    {
        var bicep = await Bicep.GetAsync();
        var overlay = await RenderedOverlay.GetAsync(environment);
        var serviceAccount = overlay.Single("ServiceAccount")["metadata"]!;
        Assert.Equal(serviceAccount["name"].Str(), overlay.WorkerDeploymentResource["spec"]!["template"]!["spec"]!["serviceAccountName"].Str());

        var subjects = bicep.Predicted(environment, "Microsoft.ManagedIdentity/userAssignedIdentities/federatedIdentityCredentials")
            .ToDictionary(f => f["name"]!.ToString().Split('/')[0], f => f["properties"]!);
        var worker = subjects.Single(s => s.Key.StartsWith("id-worker-")).Value;
        Assert.Equal($"system:serviceaccount:{serviceAccount["namespace"].Str()}:{serviceAccount["name"].Str()}", worker["subject"]!.ToString());
        Assert.Equal("api://AzureADTokenExchange", worker["audiences"]![0]!.ToString());
        // KEDA's add-on runs as kube-system/keda-operator; the TriggerAuthentication uses that identity's client id.
        Assert.Equal("system:serviceaccount:kube-system:keda-operator", subjects.Single(s => s.Key.StartsWith("id-keda-")).Value["subject"]!.ToString());
    }

    [Theory]
    [MemberData(nameof(Environments))]
    public async Task Gpu_pool_matches_what_the_worker_selects_tolerates_and_scales_to(string environment)
    {
        var bicep = await Bicep.GetAsync();
        var overlay = await RenderedOverlay.GetAsync(environment);
        var cluster = bicep.Predicted(environment, "Microsoft.ContainerService/managedClusters").Single()["properties"]!;
        Assert.True(cluster["oidcIssuerProfile"]!["enabled"]!.GetValue<bool>());
        Assert.True(cluster["securityProfile"]!["workloadIdentity"]!["enabled"]!.GetValue<bool>());
        Assert.True(cluster["workloadAutoScalerProfile"]!["keda"]!["enabled"]!.GetValue<bool>());
        Assert.True(cluster["storageProfile"]!["blobCSIDriver"]!["enabled"]!.GetValue<bool>(), "models-pvc.yaml needs the blob CSI driver");

        var podSpec = overlay.WorkerDeploymentResource["spec"]!["template"]!["spec"]!;
        var pool = cluster["agentPoolProfiles"]!.AsArray()
            .Single(p => p!["name"]!.ToString() == podSpec["nodeSelector"]!["kubernetes.azure.com/agentpool"].Str())!;
        Assert.Equal("User", pool["mode"]!.ToString());
        Assert.True(pool["enableAutoScaling"]!.GetValue<bool>());
        Assert.Equal(0, pool["minCount"]!.GetValue<int>());
        Assert.Matches("^Standard_N", pool["vmSize"]!.ToString());
        foreach (var taint in pool["nodeTaints"]!.AsArray().Select(t => t!.ToString()))
        {
            var m = Regex.Match(taint, "^(.+)=(.*):(.+)$");
            Assert.Contains(podSpec["tolerations"]!.AsArray(), t => t!["key"].Str() == m.Groups[1].Value
                && t["value"]?.ToString() == m.Groups[2].Value && t["effect"].Str() == m.Groups[3].Value);
        }
        var maxReplicas = int.Parse(overlay.Single("ScaledObject")["spec"]!["maxReplicaCount"].Str());
        Assert.True(maxReplicas <= pool["maxCount"]!.GetValue<int>(), "one GPU per pod: no more replicas than GPU nodes");
    }

    [Theory]
    [MemberData(nameof(Environments))]
    public async Task Role_assignments_are_least_privilege_on_the_narrowest_scopes(string environment)
    {
        var bicep = await Bicep.GetAsync();
        var roleNames = new Dictionary<string, string>
        {
            ["2a2b9908-6ea1-4ae2-8e65-a410df84e7d1"] = "Storage Blob Data Reader",
            ["ba92f5b4-2d11-453d-a403-e96b0029c9fe"] = "Storage Blob Data Contributor",
            ["b7e6dc6d-f1e8-4753-8033-0f276bb0955b"] = "Storage Blob Data Owner",
            ["974c5e8b-45b9-4653-ba55-5f855dd0fb88"] = "Storage Queue Data Contributor",
            ["0a9a7e1f-b9d0-4cc4-a60d-0319b160aaa3"] = "Storage Table Data Contributor",
            ["69a216fc-b8fb-44d8-bc22-1f3c2cd27a39"] = "Azure Service Bus Data Sender",
            ["4f6d3b9b-027b-4f4c-9142-0e5a2a2247e0"] = "Azure Service Bus Data Receiver",
            ["090c5cfd-751d-490a-894a-3ce6f1109419"] = "Azure Service Bus Data Owner",
            ["7f951dda-4ed3-4680-a7ca-43fe172d538d"] = "AcrPull",
            ["3913510d-42f4-4e42-8a64-420c390055eb"] = "Monitoring Metrics Publisher",
        };
        var granted = bicep.Predicted(environment, "Microsoft.Authorization/roleAssignments").Select(a =>
        {
            var principal = Regex.Match(a["properties"]!["principalId"]!.ToString(), @"outputs\.(\w+)\.value").Groups[1].Value;
            var role = roleNames.GetValueOrDefault(a["properties"]!["roleDefinitionId"]!.ToString().Split('/')[^1], "unexpected role");
            // The scope, without subscription and resource group, and with generated names reduced to their kind.
            var scope = Regex.Replace(a["id"]!.ToString().Split("/providers/Microsoft.Authorization/")[0].Split("/providers/")[^1],
                @"/(st|stfn|sb-|cr|appi-)[a-z0-9]{13}(?=/|$)", m => "/" + m.Groups[1].Value + "*");
            return $"{principal}: {role} on {scope}";
        }).Order().ToList();

        string[] expected =
        [
            "kedaPrincipalId: Azure Service Bus Data Owner on Microsoft.ServiceBus/namespaces/sb-*/queues/render-tasks",
            "kubeletObjectId: AcrPull on Microsoft.ContainerRegistry/registries/cr*",
            "principalId: Azure Service Bus Data Sender on Microsoft.ServiceBus/namespaces/sb-*/queues/render-tasks",
            "principalId: Monitoring Metrics Publisher on Microsoft.Insights/components/appi-*",
            "principalId: Storage Blob Data Contributor on Microsoft.Storage/storageAccounts/st*/blobServices/default/containers/renders",
            "principalId: Storage Blob Data Owner on Microsoft.Storage/storageAccounts/stfn*",
            "principalId: Storage Blob Data Reader on Microsoft.Storage/storageAccounts/st*/blobServices/default/containers/manifests",
            "principalId: Storage Blob Data Reader on Microsoft.Storage/storageAccounts/st*/blobServices/default/containers/schedules",
            "principalId: Storage Queue Data Contributor on Microsoft.Storage/storageAccounts/st*",
            "principalId: Storage Queue Data Contributor on Microsoft.Storage/storageAccounts/stfn*",
            "principalId: Storage Table Data Contributor on Microsoft.Storage/storageAccounts/st*/tableServices/default/tables/jobitems",
            "principalId: Storage Table Data Contributor on Microsoft.Storage/storageAccounts/st*/tableServices/default/tables/jobs",
            "principalId: Storage Table Data Contributor on Microsoft.Storage/storageAccounts/st*/tableServices/default/tables/schedules",
            "workerPrincipalId: Azure Service Bus Data Receiver on Microsoft.ServiceBus/namespaces/sb-*/queues/render-tasks",
            "workerPrincipalId: Storage Blob Data Contributor on Microsoft.Storage/storageAccounts/st*/blobServices/default/containers/renders",
            "workerPrincipalId: Storage Blob Data Reader on Microsoft.Storage/storageAccounts/st*/blobServices/default/containers/manifests",
            "workerPrincipalId: Storage Table Data Contributor on Microsoft.Storage/storageAccounts/st*/tableServices/default/tables/jobitems",
            "workerPrincipalId: Storage Table Data Contributor on Microsoft.Storage/storageAccounts/st*/tableServices/default/tables/jobs",
            "workerPrincipalId: Storage Table Data Contributor on Microsoft.Storage/storageAccounts/st*/tableServices/default/tables/schedules",
        ];
        Assert.Equal(expected, granted);
    }

    [Theory]
    [MemberData(nameof(Environments))]
    public async Task Every_resource_sends_diagnostics_to_the_workspace(string environment)
    {
        var bicep = await Bicep.GetAsync();
        var diagnostics = bicep.Predicted(environment, "Microsoft.Insights/diagnosticSettings")
            .Select(d => d["id"]!.ToString().Split("/providers/Microsoft.Insights/")[0].Split("/providers/")[^1].Split('/')[0..2])
            .Select(parts => string.Join('/', parts))
            .ToList();
        foreach (var type in new[] { "Microsoft.ServiceBus/namespaces", "Microsoft.ContainerService/managedClusters", "Microsoft.Web/sites", "Microsoft.ContainerRegistry/registries" })
            Assert.Contains(type, diagnostics);
        var cluster = bicep.Predicted(environment, "Microsoft.ContainerService/managedClusters").Single()["properties"]!;
        Assert.True(cluster["addonProfiles"]!["omsagent"]!["enabled"]!.GetValue<bool>(), "Container Insights is off");
        // With Entra ID auth the agent collects only through a data collection rule associated with the cluster.
        Assert.Equal("true", cluster["addonProfiles"]!["omsagent"]!["config"]!["useAADAuth"]!.ToString());
        Assert.Single(bicep.Predicted(environment, "Microsoft.Insights/dataCollectionRuleAssociations"));
        Assert.Empty(bicep.Snapshot(environment)["diagnostics"]!.AsArray());
    }

    private static Dictionary<string, string> WorkerEnvironment(RenderedOverlay overlay)
    {
        var environment = new Dictionary<string, string>(overlay.ConfigMapData("batchrender-worker-settings"));
        foreach (var entry in overlay.WorkerContainer["env"]?.AsArray() ?? [])
            environment[entry!["name"].Str()] = "set";
        return environment;
    }
}
