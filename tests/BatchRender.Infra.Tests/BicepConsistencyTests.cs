using System.Text.Json.Nodes;
using BatchRender.Core.Configuration;

namespace BatchRender.Infra.Tests;

/// <summary>The Bicep creates what the code uses, under the names the code uses, with the settings it assumes.</summary>
public class BicepConsistencyTests
{
    [Fact]
    public async Task Queue_container_and_table_names_default_to_the_codes_names()
    {
        var bicep = await Bicep.GetAsync();
        var transport = new TransportOptions();
        var blobs = new BlobOptions();
        var state = new StateOptions();
        Assert.Equal(transport.QueueName, bicep.DefaultOf("renderQueueName").Str());
        Assert.Equal(transport.PoisonQueueName, bicep.DefaultOf("poisonQueueName").Str());
        Assert.Equal(blobs.ManifestsContainer, bicep.DefaultOf("manifestsContainer").Str());
        Assert.Equal(blobs.RendersContainer, bicep.DefaultOf("rendersContainer").Str());
        Assert.Equal(blobs.SchedulesContainer, bicep.DefaultOf("schedulesContainer").Str());
        Assert.Equal(state.JobsTable, bicep.DefaultOf("jobsTable").Str());
        Assert.Equal(state.ItemsTable, bicep.DefaultOf("itemsTable").Str());
        Assert.Equal(state.SchedulesTable, bicep.DefaultOf("schedulesTable").Str());

        // ...and the storage module is handed exactly those names.
        var storage = bicep.ModuleInputs("storage");
        string[] Values(string input) => storage[input]!["value"]!.AsArray().Select(v => v!.ToString()).ToArray();
        Assert.Equal(["[parameters('manifestsContainer')]", "[parameters('rendersContainer')]", "[parameters('schedulesContainer')]"], Values("containerNames"));
        Assert.Equal(["[parameters('jobsTable')]", "[parameters('itemsTable')]", "[parameters('schedulesTable')]"], Values("tableNames"));
        Assert.Equal(["[parameters('renderQueueName')]", "[parameters('poisonQueueName')]"], Values("queueNames"));
        Assert.Equal("[parameters('renderQueueName')]", bicep.ModuleInputs("serviceBus")["queueName"]!["value"]!.ToString());
    }

    [Fact]
    public async Task Service_bus_queue_matches_the_transport_settings()
    {
        var bicep = await Bicep.GetAsync();
        var transport = new TransportOptions();
        Assert.Equal(transport.LockDuration.TotalSeconds, bicep.DefaultOf("lockDurationSeconds")!.GetValue<int>());
        Assert.Equal(transport.MaxDeliveryCount, bicep.DefaultOf("maxDeliveryCount")!.GetValue<int>());

        var inputs = bicep.ModuleInputs("serviceBus");
        Assert.Equal("[variables('lockDuration')]", inputs["lockDuration"]!["value"]!.ToString());
        Assert.Equal("[format('PT{0}S', parameters('lockDurationSeconds'))]", bicep.Template["variables"]!["lockDuration"]!.ToString());
        Assert.Equal("[parameters('maxDeliveryCount')]", inputs["maxDeliveryCount"]!["value"]!.ToString());

        var module = bicep.Module("serviceBus");
        var ns = ResourceOfType(module, "Microsoft.ServiceBus/namespaces");
        Assert.True(ns["properties"]!["disableLocalAuth"]!.GetValue<bool>(), "Service Bus must disable local (SAS) auth");
        var queue = ResourceOfType(module, "Microsoft.ServiceBus/namespaces/queues")["properties"]!;
        Assert.Equal("[parameters('lockDuration')]", queue["lockDuration"]!.ToString());
        // One above the worker's own limit, which it keeps at receive (DeliveryLimit): the broker's is a backstop.
        Assert.Equal("[add(parameters('maxDeliveryCount'), 1)]", queue["maxDeliveryCount"]!.ToString());
        Assert.True(queue["requiresDuplicateDetection"]!.GetValue<bool>());
        Assert.Equal("[parameters('duplicateDetectionWindow')]", queue["duplicateDetectionHistoryTimeWindow"]!.ToString());
        Assert.True(queue["deadLetteringOnMessageExpiration"]!.GetValue<bool>());
        Assert.False(queue["requiresSession"]!.GetValue<bool>());
    }

    [Fact]
    public async Task Storage_is_entra_only_tls12_with_soft_delete()
    {
        var module = (await Bicep.GetAsync()).Module("storage");
        var account = ResourceOfType(module, "Microsoft.Storage/storageAccounts")["properties"]!;
        Assert.False(account["allowSharedKeyAccess"]!.GetValue<bool>());
        Assert.False(account["allowBlobPublicAccess"]!.GetValue<bool>());
        Assert.Equal("TLS1_2", account["minimumTlsVersion"]!.ToString());
        var blobService = ResourceOfType(module, "Microsoft.Storage/storageAccounts/blobServices")["properties"]!;
        Assert.True(blobService["deleteRetentionPolicy"]!["enabled"]!.GetValue<bool>());
        Assert.True(blobService["containerDeleteRetentionPolicy"]!["enabled"]!.GetValue<bool>());

        var functionsHost = ResourceOfType((await Bicep.GetAsync()).Module("functions"), "Microsoft.Storage/storageAccounts")["properties"]!;
        Assert.False(functionsHost["allowSharedKeyAccess"]!.GetValue<bool>());
    }

    [Fact]
    public async Task Functions_app_uses_flex_consumption_with_a_managed_identity()
    {
        var module = (await Bicep.GetAsync()).Module("functions");
        Assert.Equal("FC1", ResourceOfType(module, "Microsoft.Web/serverfarms")["sku"]!["name"]!.ToString());
        var site = ResourceOfType(module, "Microsoft.Web/sites");
        Assert.Equal("SystemAssigned", site["identity"]!["type"]!.ToString());
        var config = site["properties"]!["functionAppConfig"]!;
        Assert.Equal("dotnet-isolated", config["runtime"]!["name"]!.ToString());
        Assert.Equal("SystemAssignedIdentity", config["deployment"]!["storage"]!["authentication"]!["type"]!.ToString());
        // Host storage is identity-based: AzureWebJobsStorage__accountName, never an AzureWebJobsStorage connection string.
        var appSettings = ResourceOfType(module, "Microsoft.Web/sites/config")["properties"]!.ToJsonString();
        Assert.Contains("AzureWebJobsStorage__accountName", appSettings);
        Assert.DoesNotContain("\"AzureWebJobsStorage\"", appSettings);
        Assert.DoesNotContain("AccountKey", appSettings);
    }

    [Fact]
    public async Task Event_grid_delivers_manifest_blobs_to_the_blob_trigger_endpoint()
    {
        var bicep = await Bicep.GetAsync();
        var module = bicep.Module("eventGrid");
        var subscription = ResourceOfType(module, "Microsoft.EventGrid/systemTopics/eventSubscriptions")["properties"]!;
        var filter = subscription["filter"]!;
        Assert.Equal("Microsoft.Storage.BlobCreated", filter["includedEventTypes"]![0]!.ToString());
        Assert.Equal("[format('/blobServices/default/containers/{0}/blobs/', parameters('manifestsContainer'))]",
            filter["subjectBeginsWith"]!.ToString());
        Assert.Equal("[parameters('manifestsContainer')]", bicep.ModuleInputs("eventGrid")["manifestsContainer"]!["value"]!.ToString());
        var url = subscription["destination"]!["properties"]!["endpointUrl"]!.ToString();
        Assert.Contains("/runtime/webhooks/blobs?functionName=Host.Functions.{1}&code={2}", url);
        Assert.Contains("listKeys(", url);
        Assert.Contains(".systemKeys.blobs_extension", url);
    }

    [Fact]
    public async Task Worker_identity_is_federated_to_the_service_account_the_deployment_uses()
    {
        var bicep = await Bicep.GetAsync();
        var identity = bicep.Module("identity");
        var federations = BicepResults.ResourcesOf(identity).Select(r => r.Resource)
            .Where(r => r["type"]!.ToString() == "Microsoft.ManagedIdentity/userAssignedIdentities/federatedIdentityCredentials")
            .ToList();
        var worker = federations.Single(f => f["name"]!.ToString().StartsWith("[format('{0}/{1}', parameters('workerIdentityName')"))["properties"]!;
        Assert.Equal("[format('system:serviceaccount:{0}:{1}', parameters('workerNamespace'), parameters('workerServiceAccountName'))]",
            worker["subject"]!.ToString());
        Assert.Equal("[parameters('oidcIssuerUrl')]", worker["issuer"]!.ToString());
        Assert.Equal("[parameters('workerNamespace')]", bicep.ModuleInputs("identity")["workerNamespace"]!["value"]!.ToString());
        Assert.Equal("[parameters('workerServiceAccountName')]", bicep.ModuleInputs("identity")["workerServiceAccountName"]!["value"]!.ToString());

        // KEDA's identity is federated to the AKS add-on's operator service account.
        Assert.Equal("kube-system", identity["parameters"]!["kedaOperatorNamespace"]!["defaultValue"]!.ToString());
        Assert.Equal("keda-operator", identity["parameters"]!["kedaOperatorServiceAccountName"]!["defaultValue"]!.ToString());

        foreach (var overlay in RenderedOverlay.Overlays)
        {
            var rendered = await RenderedOverlay.GetAsync(overlay);
            var podSpec = rendered.WorkerDeploymentResource["spec"]!["template"]!["spec"]!;
            var serviceAccount = rendered.Single("ServiceAccount");
            Assert.Equal(podSpec["serviceAccountName"].Str(), serviceAccount["metadata"]!["name"].Str());
            Assert.Equal(bicep.DefaultOf("workerServiceAccountName").Str(), serviceAccount["metadata"]!["name"].Str());
            Assert.Equal(bicep.DefaultOf("workerNamespace").Str(), serviceAccount["metadata"]!["namespace"].Str());
            Assert.Equal(bicep.DefaultOf("workerNamespace").Str(), rendered.WorkerDeploymentResource["metadata"]!["namespace"].Str());
        }
    }

    [Fact]
    public async Task Outputs_carry_no_keys_or_connection_strings()
    {
        var template = (await Bicep.GetAsync()).Template;
        foreach (var (name, output) in template["outputs"]!.AsObject())
        {
            Assert.DoesNotMatch("(?i)key|secret|password|connectionstring|sas", name);
            var value = output!["value"]?.ToString() ?? "";
            Assert.DoesNotContain("listKeys", value, StringComparison.OrdinalIgnoreCase);
            Assert.DoesNotContain("ConnectionString", value, StringComparison.OrdinalIgnoreCase);
        }
    }

    private static JsonObject ResourceOfType(JsonObject template, string type) => BicepResults.ResourceOfType(template, type);
}
