// Container registry for the worker images. No admin user, no anonymous pull: AKS pulls with its kubelet
// identity (AcrPull, granted in roles.bicep) and azd pushes with the deploying user's Entra ID token.

@description('Azure region.')
param location string

@description('Tags applied to every resource.')
param tags object

@description('Registry name (5-50 letters and digits).')
@minLength(5)
@maxLength(50)
param registryName string

@description('Registry tier.')
@allowed(['Basic', 'Standard', 'Premium'])
param skuName string

@description('Log Analytics workspace for diagnostics.')
param workspaceId string

resource registry 'Microsoft.ContainerRegistry/registries@2023-07-01' = {
  name: registryName
  location: location
  tags: tags
  sku: { name: skuName }
  properties: {
    adminUserEnabled: false
    publicNetworkAccess: 'Enabled'
  }
}

resource diagnostics 'Microsoft.Insights/diagnosticSettings@2021-05-01-preview' = {
  name: 'to-log-analytics'
  scope: registry
  properties: {
    workspaceId: workspaceId
    logs: [{ categoryGroup: 'allLogs', enabled: true }]
    metrics: [{ category: 'AllMetrics', enabled: true }]
  }
}

output registryId string = registry.id
output registryName string = registry.name
output loginServer string = registry.properties.loginServer
