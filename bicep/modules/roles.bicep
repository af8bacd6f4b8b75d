// Least-privilege role assignments, each on the narrowest scope that works:
//   Functions (ingest):  read manifests and schedules, write renders/{job}/_job/*, job-state tables,
//                        send to the render queue, the blob trigger's poison queue; owner of its own host
//                        storage; publish telemetry.
//   Worker (AKS pods):   receive from the render queue, write renders, read manifests (inpaint inputs),
//                        job-state tables.
//   KEDA (scaler):       read the queue's message count. That call is the Service Bus management API
//                        (GetQueueRuntimeProperties), which needs Manage rights: with Entra ID that is
//                        Azure Service Bus Data Owner, granted on the one queue only, to an identity of its own.
//   AKS kubelet:         pull images from the registry.
//   Operator (optional): the person running azd: upload manifests, read renders and job state, deploy to AKS.

@description('Data storage account.')
param storageAccountName string

@description('Manifests container (Blobs:ManifestsContainer).')
param manifestsContainer string

@description('Renders container (Blobs:RendersContainer).')
param rendersContainer string

@description('Schedules container (Blobs:SchedulesContainer).')
param schedulesContainer string

@description('Job-state tables (State:*).')
param tableNames string[]

@description('Service Bus namespace.')
param serviceBusNamespaceName string

@description('Render queue (Transport:QueueName).')
param queueName string

@description('Functions host storage account.')
param functionsHostStorageAccountName string

@description('Application Insights component.')
param appInsightsName string

@description('Container registry.')
param registryName string

@description('AKS cluster.')
param clusterName string

@description('Function app (its system-assigned identity is the ingest principal).')
param functionAppName string

@description('Principal of the Functions app (system-assigned).')
param functionsPrincipalId string

@description('Worker identity name.')
param workerIdentityName string

@description('KEDA identity name.')
param kedaIdentityName string

@description('Principal of the worker identity.')
param workerPrincipalId string

@description('Principal of the KEDA identity.')
param kedaPrincipalId string

@description('Object id of the AKS kubelet identity.')
param kubeletObjectId string

@description('Object id of the person or pipeline operating the deployment; empty = no operator roles.')
param operatorPrincipalId string

@description('Type of the operator principal.')
@allowed(['User', 'Group', 'ServicePrincipal'])
param operatorPrincipalType string

// Built-in role definition ids (the same in every tenant).
var role = {
  storageBlobDataReader: '2a2b9908-6ea1-4ae2-8e65-a410df84e7d1'
  storageBlobDataContributor: 'ba92f5b4-2d11-453d-a403-e96b0029c9fe'
  storageBlobDataOwner: 'b7e6dc6d-f1e8-4753-8033-0f276bb0955b'
  storageQueueDataContributor: '974c5e8b-45b9-4653-ba55-5f855dd0fb88'
  storageTableDataContributor: '0a9a7e1f-b9d0-4cc4-a60d-0319b160aaa3'
  storageTableDataReader: '76199698-9eea-4c19-bc75-cec21354c6b6'
  serviceBusDataSender: '69a216fc-b8fb-44d8-bc22-1f3c2cd27a39'
  serviceBusDataReceiver: '4f6d3b9b-027b-4f4c-9142-0e5a2a2247e0'
  serviceBusDataOwner: '090c5cfd-751d-490a-894a-3ce6f1109419'
  acrPull: '7f951dda-4ed3-4680-a7ca-43fe172d538d'
  acrPush: '8311e382-0749-4cb8-b61a-304f252e45ec'
  monitoringMetricsPublisher: '3913510d-42f4-4e42-8a64-420c390055eb'
  aksRbacClusterAdmin: 'b1ff04bb-8a4e-4dc4-8eb5-8693973ce19b'
  aksClusterUser: '4abbcc35-e782-43d8-92c5-2d3885067cb4'
}

var hasOperator = !empty(operatorPrincipalId)

resource storage 'Microsoft.Storage/storageAccounts@2023-05-01' existing = {
  name: storageAccountName
}

resource blobService 'Microsoft.Storage/storageAccounts/blobServices@2023-05-01' existing = {
  parent: storage
  name: 'default'
}

resource manifests 'Microsoft.Storage/storageAccounts/blobServices/containers@2023-05-01' existing = {
  parent: blobService
  name: manifestsContainer
}

resource renders 'Microsoft.Storage/storageAccounts/blobServices/containers@2023-05-01' existing = {
  parent: blobService
  name: rendersContainer
}

resource schedules 'Microsoft.Storage/storageAccounts/blobServices/containers@2023-05-01' existing = {
  parent: blobService
  name: schedulesContainer
}

resource tableService 'Microsoft.Storage/storageAccounts/tableServices@2023-05-01' existing = {
  parent: storage
  name: 'default'
}

resource tables 'Microsoft.Storage/storageAccounts/tableServices/tables@2023-05-01' existing = [
  for name in tableNames: {
    parent: tableService
    name: name
  }
]

resource serviceBus 'Microsoft.ServiceBus/namespaces@2024-01-01' existing = {
  name: serviceBusNamespaceName
}

resource queue 'Microsoft.ServiceBus/namespaces/queues@2024-01-01' existing = {
  parent: serviceBus
  name: queueName
}

resource hostStorage 'Microsoft.Storage/storageAccounts@2023-05-01' existing = {
  name: functionsHostStorageAccountName
}

resource appInsights 'Microsoft.Insights/components@2020-02-02' existing = {
  name: appInsightsName
}

resource registry 'Microsoft.ContainerRegistry/registries@2023-07-01' existing = {
  name: registryName
}

resource cluster 'Microsoft.ContainerService/managedClusters@2024-09-01' existing = {
  name: clusterName
}

// ---- Functions (ingest) ----

resource functionsReadManifests 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(manifests.id, functionAppName, role.storageBlobDataReader)
  scope: manifests
  properties: {
    principalId: functionsPrincipalId
    principalType: 'ServicePrincipal'
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', role.storageBlobDataReader)
  }
}

resource functionsReadSchedules 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(schedules.id, functionAppName, role.storageBlobDataReader)
  scope: schedules
  properties: {
    principalId: functionsPrincipalId
    principalType: 'ServicePrincipal'
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', role.storageBlobDataReader)
  }
}

// Ingest writes renders/{jobId}/_job/manifest.json and errors.json, and _schedules/{name}/errors.json.
resource functionsWriteRenders 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(renders.id, functionAppName, role.storageBlobDataContributor)
  scope: renders
  properties: {
    principalId: functionsPrincipalId
    principalType: 'ServicePrincipal'
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', role.storageBlobDataContributor)
  }
}

resource functionsTables 'Microsoft.Authorization/roleAssignments@2022-04-01' = [
  for (name, i) in tableNames: {
    name: guid(tables[i].id, functionAppName, role.storageTableDataContributor)
    scope: tables[i]
    properties: {
      principalId: functionsPrincipalId
      principalType: 'ServicePrincipal'
      roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', role.storageTableDataContributor)
    }
  }
]

resource functionsSend 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(queue.id, functionAppName, role.serviceBusDataSender)
  scope: queue
  properties: {
    principalId: functionsPrincipalId
    principalType: 'ServicePrincipal'
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', role.serviceBusDataSender)
  }
}

// The blob trigger (connection "Storage") moves a manifest that keeps failing to its poison queue
// (webjobs-blobtrigger-poison) in the same account as the blob.
resource functionsTriggerPoisonQueue 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(storage.id, functionAppName, role.storageQueueDataContributor)
  scope: storage
  properties: {
    principalId: functionsPrincipalId
    principalType: 'ServicePrincipal'
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', role.storageQueueDataContributor)
  }
}

// The Functions host's own account: deployment package, timer and singleton leases, keys, blob-trigger
// poison queue.
resource functionsHostBlobs 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(hostStorage.id, functionAppName, role.storageBlobDataOwner)
  scope: hostStorage
  properties: {
    principalId: functionsPrincipalId
    principalType: 'ServicePrincipal'
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', role.storageBlobDataOwner)
  }
}

resource functionsHostQueues 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(hostStorage.id, functionAppName, role.storageQueueDataContributor)
  scope: hostStorage
  properties: {
    principalId: functionsPrincipalId
    principalType: 'ServicePrincipal'
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', role.storageQueueDataContributor)
  }
}

resource functionsTelemetry 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(appInsights.id, functionAppName, role.monitoringMetricsPublisher)
  scope: appInsights
  properties: {
    principalId: functionsPrincipalId
    principalType: 'ServicePrincipal'
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', role.monitoringMetricsPublisher)
  }
}

// ---- Worker (AKS workload identity) ----

resource workerReceive 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(queue.id, workerIdentityName, role.serviceBusDataReceiver)
  scope: queue
  properties: {
    principalId: workerPrincipalId
    principalType: 'ServicePrincipal'
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', role.serviceBusDataReceiver)
  }
}

resource workerWriteRenders 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(renders.id, workerIdentityName, role.storageBlobDataContributor)
  scope: renders
  properties: {
    principalId: workerPrincipalId
    principalType: 'ServicePrincipal'
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', role.storageBlobDataContributor)
  }
}

// Inpaint items read their image and mask beside the manifest.
resource workerReadManifests 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(manifests.id, workerIdentityName, role.storageBlobDataReader)
  scope: manifests
  properties: {
    principalId: workerPrincipalId
    principalType: 'ServicePrincipal'
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', role.storageBlobDataReader)
  }
}

resource workerTables 'Microsoft.Authorization/roleAssignments@2022-04-01' = [
  for (name, i) in tableNames: {
    name: guid(tables[i].id, workerIdentityName, role.storageTableDataContributor)
    scope: tables[i]
    properties: {
      principalId: workerPrincipalId
      principalType: 'ServicePrincipal'
      roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', role.storageTableDataContributor)
    }
  }
]

// ---- KEDA (queue length for scaling) ----

resource kedaQueueMetrics 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(queue.id, kedaIdentityName, role.serviceBusDataOwner)
  scope: queue
  properties: {
    principalId: kedaPrincipalId
    principalType: 'ServicePrincipal'
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', role.serviceBusDataOwner)
  }
}

// ---- AKS kubelet ----

resource kubeletPull 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(registry.id, clusterName, 'kubelet', role.acrPull)
  scope: registry
  properties: {
    principalId: kubeletObjectId
    principalType: 'ServicePrincipal'
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', role.acrPull)
  }
}

// ---- Operator (optional) ----

resource operatorManifests 'Microsoft.Authorization/roleAssignments@2022-04-01' = if (hasOperator) {
  name: guid(manifests.id, operatorPrincipalId, role.storageBlobDataContributor)
  scope: manifests
  properties: {
    principalId: operatorPrincipalId
    principalType: operatorPrincipalType
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', role.storageBlobDataContributor)
  }
}

resource operatorSchedules 'Microsoft.Authorization/roleAssignments@2022-04-01' = if (hasOperator) {
  name: guid(schedules.id, operatorPrincipalId, role.storageBlobDataContributor)
  scope: schedules
  properties: {
    principalId: operatorPrincipalId
    principalType: operatorPrincipalType
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', role.storageBlobDataContributor)
  }
}

resource operatorRenders 'Microsoft.Authorization/roleAssignments@2022-04-01' = if (hasOperator) {
  name: guid(renders.id, operatorPrincipalId, role.storageBlobDataReader)
  scope: renders
  properties: {
    principalId: operatorPrincipalId
    principalType: operatorPrincipalType
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', role.storageBlobDataReader)
  }
}

resource operatorTables 'Microsoft.Authorization/roleAssignments@2022-04-01' = [
  for (name, i) in tableNames: if (hasOperator) {
    name: guid(tables[i].id, operatorPrincipalId, role.storageTableDataReader)
    scope: tables[i]
    properties: {
      principalId: operatorPrincipalId
      principalType: operatorPrincipalType
      roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', role.storageTableDataReader)
    }
  }
]

resource operatorPush 'Microsoft.Authorization/roleAssignments@2022-04-01' = if (hasOperator) {
  name: guid(registry.id, operatorPrincipalId, role.acrPush)
  scope: registry
  properties: {
    principalId: operatorPrincipalId
    principalType: operatorPrincipalType
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', role.acrPush)
  }
}

resource operatorClusterUser 'Microsoft.Authorization/roleAssignments@2022-04-01' = if (hasOperator) {
  name: guid(cluster.id, operatorPrincipalId, role.aksClusterUser)
  scope: cluster
  properties: {
    principalId: operatorPrincipalId
    principalType: operatorPrincipalType
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', role.aksClusterUser)
  }
}

resource operatorClusterAdmin 'Microsoft.Authorization/roleAssignments@2022-04-01' = if (hasOperator) {
  name: guid(cluster.id, operatorPrincipalId, role.aksRbacClusterAdmin)
  scope: cluster
  properties: {
    principalId: operatorPrincipalId
    principalType: operatorPrincipalType
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', role.aksRbacClusterAdmin)
  }
}
