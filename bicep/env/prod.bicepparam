// A production environment: zone-redundant storage, Premium Service Bus, more GPU nodes, longer retention.
//   az deployment sub create -l eastus2 -f bicep/main.bicep -p bicep/env/prod.bicepparam
using '../main.bicep'

param environmentName = 'batchrender-prod'
param environmentType = 'prod'
param location = 'eastus2'
param systemVmSize = 'Standard_D4ds_v5'
param systemNodeCount = 3
param gpuVmSize = 'Standard_NC40ads_H100_v5'
param gpuMaxCount = 8
param serviceBusSku = 'Premium'
param serviceBusPremiumCapacity = 1
param storageSku = 'Standard_ZRS'
param registrySku = 'Premium'
param blobSoftDeleteDays = 30
param logRetentionDays = 90
param functionsMaximumInstanceCount = 100
// Set true on a second deployment, after the Functions code is published (see docs/deploy-azure.md).
param enableManifestEventSubscription = false
