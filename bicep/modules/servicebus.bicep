// Service Bus namespace (Entra ID only) and the render-tasks queue. The queue's lock duration is the worker's
// Transport:LockDuration; its max delivery count is Transport:MaxDeliveryCount + 1, because the worker keeps the
// limit itself: it dead-letters the delivery past the limit and marks the item dead-lettered, which the broker,
// dead-lettering on its own, would not (main.bicep passes the same parameters to the worker ConfigMap and the
// Functions app settings).

@description('Azure region.')
param location string

@description('Tags applied to every resource.')
param tags object

@description('Service Bus namespace name.')
param namespaceName string

@description('Service Bus tier. Standard supports duplicate detection; Premium adds isolation and larger messages.')
@allowed(['Standard', 'Premium'])
param skuName string

@description('Messaging units (Premium only).')
@allowed([1, 2, 4, 8, 16])
param premiumCapacity int

@description('Queue of render tasks (Transport:QueueName).')
param queueName string

@description('Peek-lock duration, ISO 8601 (Transport:LockDuration).')
param lockDuration string

@description('Deliveries before a task is dead-lettered (Transport:MaxDeliveryCount).')
@minValue(1)
@maxValue(100)
param maxDeliveryCount int

@description('Window in which a repeated MessageId is dropped, ISO 8601.')
param duplicateDetectionWindow string

@description('Time a task may wait in the queue before it expires to the dead-letter queue, ISO 8601.')
param messageTimeToLive string

@description('Log Analytics workspace for diagnostics.')
param workspaceId string

resource namespace 'Microsoft.ServiceBus/namespaces@2024-01-01' = {
  name: namespaceName
  location: location
  tags: tags
  sku: {
    name: skuName
    tier: skuName
    capacity: skuName == 'Premium' ? premiumCapacity : null
  }
  properties: {
    disableLocalAuth: true
    minimumTlsVersion: '1.2'
    publicNetworkAccess: 'Enabled'
  }
}

resource queue 'Microsoft.ServiceBus/namespaces/queues@2024-01-01' = {
  parent: namespace
  name: queueName
  properties: {
    lockDuration: lockDuration
    maxDeliveryCount: maxDeliveryCount + 1
    requiresDuplicateDetection: true
    duplicateDetectionHistoryTimeWindow: duplicateDetectionWindow
    defaultMessageTimeToLive: messageTimeToLive
    deadLetteringOnMessageExpiration: true
    requiresSession: false
    enableBatchedOperations: true
  }
}

resource diagnostics 'Microsoft.Insights/diagnosticSettings@2021-05-01-preview' = {
  name: 'to-log-analytics'
  scope: namespace
  properties: {
    workspaceId: workspaceId
    logs: [
      { categoryGroup: 'allLogs', enabled: true }
    ]
    metrics: [{ category: 'AllMetrics', enabled: true }]
  }
}

output namespaceId string = namespace.id
output namespaceName string = namespace.name
output queueId string = queue.id
output queueName string = queue.name
// serviceBusEndpoint is https://{name}.servicebus.windows.net:443/ in the public cloud; keep the host only.
output fullyQualifiedNamespace string = replace(split(namespace.properties.serviceBusEndpoint, '/')[2], ':443', '')
