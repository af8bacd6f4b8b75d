// A development environment: smallest sizes, one GPU node at most, short retention.
//   az deployment sub create -l eastus2 -f bicep/main.bicep -p bicep/env/dev.bicepparam
using '../main.bicep'

param environmentName = 'batchrender-dev'
param environmentType = 'dev'
param location = 'eastus2'
param systemVmSize = 'Standard_D4ds_v5'
param systemNodeCount = 1
param gpuVmSize = 'Standard_NC40ads_H100_v5'
param gpuMaxCount = 1
param serviceBusSku = 'Standard'
param storageSku = 'Standard_LRS'
param registrySku = 'Basic'
param blobSoftDeleteDays = 7
param logRetentionDays = 30
param functionsMaximumInstanceCount = 10
// Set true on a second deployment, after the Functions code is published (see docs/deploy-azure.md).
param enableManifestEventSubscription = false
