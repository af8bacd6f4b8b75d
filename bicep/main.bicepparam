// Parameters for `azd up` / `azd provision`: azd exports its environment (AZURE_ENV_NAME, AZURE_LOCATION,
// AZURE_PRINCIPAL_ID) and whatever `azd env set` added. Anything not set takes the dev defaults.
using 'main.bicep'

param environmentName = readEnvironmentVariable('AZURE_ENV_NAME', 'batchrender-dev')
param location = readEnvironmentVariable('AZURE_LOCATION', 'eastus2')
param environmentType = readEnvironmentVariable('BATCHRENDER_ENVIRONMENT_TYPE', 'dev')
param operatorPrincipalId = readEnvironmentVariable('AZURE_PRINCIPAL_ID', '')
param operatorPrincipalType = readEnvironmentVariable('AZURE_PRINCIPAL_TYPE', 'User')
param gpuVmSize = readEnvironmentVariable('BATCHRENDER_GPU_VM_SIZE', 'Standard_NC40ads_H100_v5')
param gpuMaxCount = int(readEnvironmentVariable('BATCHRENDER_GPU_MAX_COUNT', '2'))
// Turned on by the postdeploy hook once the Functions code (and so its blobs_extension key) exists.
param enableManifestEventSubscription = bool(readEnvironmentVariable('BATCHRENDER_ENABLE_EVENT_SUBSCRIPTION', 'false'))
