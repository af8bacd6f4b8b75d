// Event Grid system topic on the data storage account and a BlobCreated subscription for the manifests
// container, delivered to the Functions blob trigger's Event Grid endpoint (the blobs extension webhook).
// The subscription needs the app's `blobs_extension` system key, which exists only once the app's code (with
// its blob trigger) has started; main.bicep therefore creates it only when createSubscription is true (the
// azd postdeploy hook re-provisions with it on after the first code deployment).

@description('Azure region.')
param location string

@description('Tags applied to every resource.')
param tags object

@description('System topic name.')
param systemTopicName string

@description('Data storage account that raises the events.')
param storageAccountName string

@description('Container whose new blobs are manifests (Blobs:ManifestsContainer).')
param manifestsContainer string

@description('Function app that ingests manifests.')
param functionAppName string

@description('Name of the blob-triggered function (its [Function] name) that ingests manifests.')
param manifestFunctionName string

@description('Create the event subscription (requires the Functions code to be deployed).')
param createSubscription bool

@description('Log Analytics workspace for diagnostics.')
param workspaceId string

resource storage 'Microsoft.Storage/storageAccounts@2023-05-01' existing = {
  name: storageAccountName
}

resource functionApp 'Microsoft.Web/sites@2024-04-01' existing = {
  name: functionAppName
}

resource systemTopic 'Microsoft.EventGrid/systemTopics@2022-06-15' = {
  name: systemTopicName
  location: location
  tags: tags
  properties: {
    source: storage.id
    topicType: 'Microsoft.Storage.StorageAccounts'
  }
}

resource manifestCreated 'Microsoft.EventGrid/systemTopics/eventSubscriptions@2022-06-15' = if (createSubscription) {
  parent: systemTopic
  name: 'manifest-created'
  properties: {
    destination: {
      endpointType: 'WebHook'
      properties: {
        // The key is read at deployment time and never appears in outputs or source.
        endpointUrl: 'https://${functionApp.properties.defaultHostName}/runtime/webhooks/blobs?functionName=Host.Functions.${manifestFunctionName}&code=${listKeys('${functionApp.id}/host/default', '2024-04-01').systemKeys.blobs_extension}'
        maxEventsPerBatch: 1
        preferredBatchSizeInKilobytes: 64
      }
    }
    eventDeliverySchema: 'EventGridSchema'
    filter: {
      includedEventTypes: ['Microsoft.Storage.BlobCreated']
      subjectBeginsWith: '/blobServices/default/containers/${manifestsContainer}/blobs/'
      subjectEndsWith: '.json'
    }
    retryPolicy: {
      maxDeliveryAttempts: 30
      eventTimeToLiveInMinutes: 1440
    }
  }
}

resource diagnostics 'Microsoft.Insights/diagnosticSettings@2021-05-01-preview' = {
  name: 'to-log-analytics'
  scope: systemTopic
  properties: {
    workspaceId: workspaceId
    logs: [{ categoryGroup: 'allLogs', enabled: true }]
    metrics: [{ category: 'AllMetrics', enabled: true }]
  }
}

output systemTopicName string = systemTopic.name
output subscriptionCreated bool = createSubscription
