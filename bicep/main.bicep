// BatchRender on Azure: ingest (Functions, Flex Consumption) -> Service Bus -> GPU workers on AKS (KEDA) ->
// Blob Storage, everything authenticated with Entra ID (no keys, no connection strings).
// Deploy with `azd up` (azure.yaml at the repo root), or:
//   az deployment sub create -l <region> -f bicep/main.bicep -p bicep/env/dev.bicepparam
//
// Names and settings the code reads (queue, containers, tables, Transport:*, Worker:*) are parameters here
// whose defaults are the code's defaults (src/BatchRender.Core/Configuration); tests/BatchRender.Infra.Tests
// checks that they agree, and that infra/k8s agrees with both.
targetScope = 'subscription'

// ---- Environment ----

@description('Name of the environment (azd environment name); used in resource names and tags.')
@minLength(1)
@maxLength(20)
param environmentName string

@description('Kind of environment: selects the infra/k8s overlay and a few sizes.')
@allowed(['dev', 'prod'])
param environmentType string = 'dev'

@description('Azure region for every resource.')
param location string

@description('Resource group to create; empty = rg-{environmentName}.')
param resourceGroupName string = ''

@description('Object id of the person or pipeline operating this deployment (azd sets AZURE_PRINCIPAL_ID): gets rights to upload manifests, read renders and deploy to AKS. Empty = none.')
param operatorPrincipalId string = ''

@description('Type of operatorPrincipalId.')
@allowed(['User', 'Group', 'ServicePrincipal'])
param operatorPrincipalType string = 'User'

// ---- Names the code uses (defaults = the code's defaults) ----

@description('Service Bus queue of render tasks (Transport:QueueName).')
param renderQueueName string = 'render-tasks'

@description('Storage Queue transport: dead-letter queue (Transport:PoisonQueueName).')
param poisonQueueName string = 'render-tasks-poison'

@description('Container of incoming manifests (Blobs:ManifestsContainer).')
param manifestsContainer string = 'manifests'

@description('Container of renders (Blobs:RendersContainer).')
param rendersContainer string = 'renders'

@description('Container of schedules (Blobs:SchedulesContainer).')
param schedulesContainer string = 'schedules'

@description('Table of jobs (State:JobsTable).')
param jobsTable string = 'jobs'

@description('Table of job items (State:ItemsTable).')
param itemsTable string = 'jobitems'

@description('Table of schedule occurrences (State:SchedulesTable).')
param schedulesTable string = 'schedules'

// ---- Worker settings shared by Service Bus, the worker ConfigMap and the Functions app ----

@description('Peek-lock duration in seconds (Transport:LockDuration; the Service Bus queue LockDuration). 5..300.')
@minValue(5)
@maxValue(300)
param lockDurationSeconds int = 60

@description('Deliveries before a task is dead-lettered (Transport:MaxDeliveryCount; the worker keeps the limit, the queue MaxDeliveryCount is one higher).')
@minValue(1)
@maxValue(100)
param maxDeliveryCount int = 5

@description('Service Bus duplicate detection window, ISO 8601 (MessageId = a stable hash of job, item and params).')
param duplicateDetectionWindow string = 'PT1H'

@description('How long a task may wait before it expires to the dead-letter queue, ISO 8601.')
param messageTimeToLive string = 'P7D'

@description('Service Bus tier (duplicate detection needs Standard or Premium).')
@allowed(['Standard', 'Premium'])
param serviceBusSku string = 'Standard'

@description('Service Bus messaging units (Premium only).')
@allowed([1, 2, 4, 8, 16])
param serviceBusPremiumCapacity int = 1

// ---- Functions ----

@description('Name of the blob-triggered function that ingests manifests (its [Function("...")] name).')
param manifestFunctionName string = 'IngestManifest'

@description('Create the Event Grid subscription to the Functions blob-trigger endpoint. Needs the Functions code deployed first (its blobs_extension key): azd postdeploy turns it on and re-provisions.')
param enableManifestEventSubscription bool = false

@description('.NET isolated runtime version of the Functions app.')
param functionsRuntimeVersion string = '10.0'

@description('Most Functions instances.')
@minValue(1)
@maxValue(1000)
param functionsMaximumInstanceCount int = 40

@description('Memory per Functions instance, MB (ingest streams manifests; 2048 is ample).')
@allowed([512, 2048, 4096])
param functionsInstanceMemoryMB int = 2048

// ---- AKS ----

@description('Kubernetes version; empty = the region default.')
param kubernetesVersion string = ''

@description('VM size of the AKS system pool.')
param systemVmSize string = 'Standard_D4ds_v5'

@description('Nodes in the AKS system pool.')
@minValue(1)
@maxValue(10)
param systemNodeCount int = 2

@description('Name of the GPU node pool (infra/k8s selects it).')
@maxLength(12)
param gpuPoolName string = 'gpu'

@description('VM size of the GPU pool: an H100 (Standard_NC40ads_H100_v5, Standard_NC80adis_H100_v5) or A100 (Standard_NC24ads_A100_v4) size with quota in the region.')
param gpuVmSize string = 'Standard_NC40ads_H100_v5'

@description('Most GPU nodes (the pool autoscales from 0; KEDA scales the worker from 0).')
@minValue(1)
@maxValue(100)
param gpuMaxCount int = 2

@description('Kubernetes namespace of the worker (infra/k8s base namespace).')
param workerNamespace string = 'batchrender'

@description('Service account of the worker (infra/k8s serviceaccount.yaml).')
param workerServiceAccountName string = 'batchrender-worker'

// ---- Storage, registry, monitoring ----

@description('Redundancy of the data storage account.')
@allowed(['Standard_LRS', 'Standard_ZRS', 'Standard_GRS', 'Standard_GZRS'])
param storageSku string = 'Standard_LRS'

@description('Days a deleted blob or container can be restored.')
@minValue(1)
@maxValue(365)
param blobSoftDeleteDays int = 7

@description('Container registry tier.')
@allowed(['Basic', 'Standard', 'Premium'])
param registrySku string = 'Standard'

@description('Days Log Analytics keeps logs.')
@minValue(30)
@maxValue(730)
param logRetentionDays int = 30

// The taint on GPU nodes; the worker Deployment tolerates exactly this.
var gpuTaint = 'nvidia.com/gpu=present:NoSchedule'
var resourceToken = toLower(uniqueString(subscription().id, environmentName, location))
var tags = {
  'azd-env-name': environmentName
  application: 'batchrender'
  environment: environmentType
}
var lockDuration = 'PT${lockDurationSeconds}S'
// .NET TimeSpan format for Transport__LockDuration (hh:mm:ss).
var lockDurationTimeSpan = '00:${padLeft(string(lockDurationSeconds / 60), 2, '0')}:${padLeft(string(lockDurationSeconds % 60), 2, '0')}'

// Every resource name derives from the environment, so modules get names known at the start of the
// deployment (precise what-if) rather than other modules' outputs.
var names = {
  workspace: 'log-${resourceToken}'
  appInsights: 'appi-${resourceToken}'
  storage: 'st${resourceToken}'
  functionsHostStorage: 'stfn${resourceToken}'
  serviceBus: 'sb-${resourceToken}'
  functionApp: 'func-batchrender-${resourceToken}'
  functionsPlan: 'plan-${resourceToken}'
  registry: 'cr${resourceToken}'
  cluster: 'aks-${resourceToken}'
  workerIdentity: 'id-worker-${resourceToken}'
  kedaIdentity: 'id-keda-${resourceToken}'
  systemTopic: 'evgt-${resourceToken}'
}

resource rg 'Microsoft.Resources/resourceGroups@2024-03-01' = {
  name: empty(resourceGroupName) ? 'rg-${environmentName}' : resourceGroupName
  location: location
  tags: tags
}

module monitoring 'modules/monitoring.bicep' = {
  scope: rg
  params: {
    location: location
    tags: tags
    workspaceName: names.workspace
    appInsightsName: names.appInsights
    retentionInDays: logRetentionDays
  }
}

module storage 'modules/storage.bicep' = {
  scope: rg
  params: {
    location: location
    tags: tags
    accountName: names.storage
    skuName: storageSku
    containerNames: [manifestsContainer, rendersContainer, schedulesContainer]
    tableNames: [jobsTable, itemsTable, schedulesTable]
    queueNames: [renderQueueName, poisonQueueName]
    softDeleteRetentionDays: blobSoftDeleteDays
    workspaceId: monitoring.outputs.workspaceId
  }
}

module serviceBus 'modules/servicebus.bicep' = {
  scope: rg
  params: {
    location: location
    tags: tags
    namespaceName: names.serviceBus
    skuName: serviceBusSku
    premiumCapacity: serviceBusPremiumCapacity
    queueName: renderQueueName
    lockDuration: lockDuration
    maxDeliveryCount: maxDeliveryCount
    duplicateDetectionWindow: duplicateDetectionWindow
    messageTimeToLive: messageTimeToLive
    workspaceId: monitoring.outputs.workspaceId
  }
}

// Settings the ingest side reads, named Section__Key exactly as the option classes bind them.
var functionsSettings = {
  Storage__blobServiceUri: storage.outputs.blobEndpoint
  Storage__queueServiceUri: storage.outputs.queueEndpoint
  Storage__tableServiceUri: storage.outputs.tableEndpoint
  ServiceBus__fullyQualifiedNamespace: serviceBus.outputs.fullyQualifiedNamespace
  Transport__Kind: 'ServiceBus'
  Transport__QueueName: renderQueueName
  Transport__MaxDeliveryCount: string(maxDeliveryCount)
  Transport__LockDuration: lockDurationTimeSpan
  Blobs__ManifestsContainer: manifestsContainer
  Blobs__RendersContainer: rendersContainer
  Blobs__SchedulesContainer: schedulesContainer
  State__JobsTable: jobsTable
  State__ItemsTable: itemsTable
  State__SchedulesTable: schedulesTable
  // Ingest validates `model` against the models the workers serve; the paths matter only to workers.
  // App Service setting names allow only letters, digits, '.' and '_': a model whose name has a '-'
  // (hunyuan-dit-v1.2) cannot be listed here and must come from the Functions package's appsettings.json.
  Models__demo__Path: '/app/models/demo'
}

module functions 'modules/functions.bicep' = {
  scope: rg
  params: {
    location: location
    tags: tags
    appName: names.functionApp
    planName: names.functionsPlan
    hostStorageAccountName: names.functionsHostStorage
    runtimeVersion: functionsRuntimeVersion
    maximumInstanceCount: functionsMaximumInstanceCount
    instanceMemoryMB: functionsInstanceMemoryMB
    appInsightsName: names.appInsights
    workspaceId: monitoring.outputs.workspaceId
    batchRenderSettings: functionsSettings
    azdServiceName: 'functions'
  }
}

module registry 'modules/acr.bicep' = {
  scope: rg
  params: {
    location: location
    tags: tags
    registryName: names.registry
    skuName: registrySku
    workspaceId: monitoring.outputs.workspaceId
  }
}

module aks 'modules/aks.bicep' = {
  scope: rg
  params: {
    location: location
    tags: tags
    clusterName: names.cluster
    kubernetesVersion: kubernetesVersion
    systemVmSize: systemVmSize
    systemNodeCount: systemNodeCount
    gpuPoolName: gpuPoolName
    gpuVmSize: gpuVmSize
    gpuMaxCount: gpuMaxCount
    gpuTaint: gpuTaint
    workspaceId: monitoring.outputs.workspaceId
  }
}

module identity 'modules/identity.bicep' = {
  scope: rg
  params: {
    location: location
    tags: tags
    workerIdentityName: names.workerIdentity
    kedaIdentityName: names.kedaIdentity
    oidcIssuerUrl: aks.outputs.oidcIssuerUrl
    workerNamespace: workerNamespace
    workerServiceAccountName: workerServiceAccountName
  }
}

module roles 'modules/roles.bicep' = {
  scope: rg
  params: {
    storageAccountName: names.storage
    manifestsContainer: manifestsContainer
    rendersContainer: rendersContainer
    schedulesContainer: schedulesContainer
    tableNames: [jobsTable, itemsTable, schedulesTable]
    serviceBusNamespaceName: names.serviceBus
    queueName: renderQueueName
    functionsHostStorageAccountName: names.functionsHostStorage
    appInsightsName: names.appInsights
    registryName: names.registry
    clusterName: names.cluster
    functionAppName: names.functionApp
    functionsPrincipalId: functions.outputs.principalId
    workerIdentityName: names.workerIdentity
    kedaIdentityName: names.kedaIdentity
    workerPrincipalId: identity.outputs.workerPrincipalId
    kedaPrincipalId: identity.outputs.kedaPrincipalId
    kubeletObjectId: aks.outputs.kubeletObjectId
    operatorPrincipalId: operatorPrincipalId
    operatorPrincipalType: operatorPrincipalType
  }
  // Scopes are looked up by name: they must exist first (storage, Service Bus and monitoring already come
  // before the Functions app, whose principal is an input).
  dependsOn: [registry]
}

module eventGrid 'modules/eventgrid.bicep' = {
  scope: rg
  params: {
    location: location
    tags: tags
    systemTopicName: names.systemTopic
    storageAccountName: names.storage
    manifestsContainer: manifestsContainer
    functionAppName: names.functionApp
    manifestFunctionName: manifestFunctionName
    createSubscription: enableManifestEventSubscription
    workspaceId: monitoring.outputs.workspaceId
  }
  // The storage account raises the events; the app's host keys must exist before the subscription.
  dependsOn: [storage, functions]
}

// ---- Outputs: names and endpoints only (azd stores them in .azure/{env}/.env; azure.yaml feeds them to
// the worker's kustomize overlay). No keys, no connection strings. ----

output AZURE_LOCATION string = location
output AZURE_TENANT_ID string = tenant().tenantId
output AZURE_RESOURCE_GROUP string = rg.name
output AZURE_CONTAINER_REGISTRY_ENDPOINT string = registry.outputs.loginServer
output AZURE_CONTAINER_REGISTRY_NAME string = registry.outputs.registryName
output AZURE_AKS_CLUSTER_NAME string = aks.outputs.clusterName
output AZURE_STORAGE_ACCOUNT_NAME string = storage.outputs.accountName
output AZURE_STORAGE_BLOB_ENDPOINT string = storage.outputs.blobEndpoint
output AZURE_STORAGE_QUEUE_ENDPOINT string = storage.outputs.queueEndpoint
output AZURE_STORAGE_TABLE_ENDPOINT string = storage.outputs.tableEndpoint
output AZURE_SERVICEBUS_NAMESPACE string = serviceBus.outputs.namespaceName
output AZURE_SERVICEBUS_FULLY_QUALIFIED_NAMESPACE string = serviceBus.outputs.fullyQualifiedNamespace
output AZURE_SERVICEBUS_QUEUE_NAME string = serviceBus.outputs.queueName
output AZURE_FUNCTION_APP_NAME string = functions.outputs.appName
output AZURE_FUNCTION_APP_HOST string = functions.outputs.defaultHostName
output AZURE_WORKER_CLIENT_ID string = identity.outputs.workerClientId
output AZURE_WORKER_FEDERATED_SUBJECT string = identity.outputs.workerFederatedSubject
output AZURE_KEDA_CLIENT_ID string = identity.outputs.kedaClientId
output BATCHRENDER_K8S_OVERLAY string = environmentType
output BATCHRENDER_K8S_NAMESPACE string = workerNamespace
output BATCHRENDER_MANIFEST_EVENT_SUBSCRIPTION bool = eventGrid.outputs.subscriptionCreated
output BATCHRENDER_LOCK_DURATION string = lockDurationTimeSpan
output BATCHRENDER_MAX_DELIVERY_COUNT int = maxDeliveryCount
