// AKS cluster: OIDC issuer + workload identity (the worker and KEDA authenticate without secrets), the KEDA
// add-on (scales the worker on the Service Bus queue), Container Insights to Log Analytics, a system pool and
// a GPU user pool that autoscales from zero and is tainted so only GPU workloads land on it.

@description('Azure region.')
param location string

@description('Tags applied to every resource.')
param tags object

@description('Cluster name.')
param clusterName string

@description('Kubernetes version; empty = the region default.')
param kubernetesVersion string

@description('VM size of the system pool.')
param systemVmSize string

@description('Nodes in the system pool.')
@minValue(1)
@maxValue(10)
param systemNodeCount int

@description('Name of the GPU pool (the worker Deployment selects it with kubernetes.azure.com/agentpool).')
@maxLength(12)
param gpuPoolName string

@description('VM size of the GPU pool (an H100 or A100 size).')
param gpuVmSize string

@description('Most GPU nodes the cluster autoscaler may add.')
@minValue(1)
@maxValue(100)
param gpuMaxCount int

@description('Taint on GPU nodes, key=value:Effect (the worker tolerates it).')
param gpuTaint string

@description('Log Analytics workspace for Container Insights and control-plane logs.')
param workspaceId string

resource cluster 'Microsoft.ContainerService/managedClusters@2024-09-01' = {
  name: clusterName
  location: location
  tags: tags
  identity: { type: 'SystemAssigned' }
  sku: { name: 'Base', tier: 'Standard' }
  properties: {
    dnsPrefix: clusterName
    kubernetesVersion: empty(kubernetesVersion) ? null : kubernetesVersion
    enableRBAC: true
    disableLocalAccounts: true
    aadProfile: {
      managed: true
      enableAzureRBAC: true
    }
    oidcIssuerProfile: { enabled: true }
    securityProfile: {
      workloadIdentity: { enabled: true }
    }
    workloadAutoScalerProfile: {
      keda: { enabled: true }
    }
    storageProfile: {
      // Mounts the Hunyuan-DiT checkpoint container read-only into the workers (infra/k8s models-pvc.yaml).
      blobCSIDriver: { enabled: true }
    }
    autoUpgradeProfile: {
      upgradeChannel: 'patch'
      nodeOSUpgradeChannel: 'NodeImage'
    }
    networkProfile: {
      networkPlugin: 'azure'
      networkPluginMode: 'overlay'
      loadBalancerSku: 'standard'
    }
    autoScalerProfile: {
      // GPU nodes are expensive: give idle ones back quickly once KEDA has scaled the worker to zero.
      'scale-down-unneeded-time': '5m'
      'scale-down-delay-after-add': '5m'
    }
    addonProfiles: {
      omsagent: {
        enabled: true
        config: {
          logAnalyticsWorkspaceResourceID: workspaceId
          useAADAuth: 'true'
        }
      }
    }
    agentPoolProfiles: [
      {
        name: 'system'
        mode: 'System'
        vmSize: systemVmSize
        count: systemNodeCount
        osType: 'Linux'
        osSKU: 'AzureLinux'
        type: 'VirtualMachineScaleSets'
        // Untainted: the add-ons (KEDA, CSI drivers, monitoring) run here; the worker only on the GPU pool.
      }
      {
        name: gpuPoolName
        mode: 'User'
        vmSize: gpuVmSize
        osType: 'Linux'
        osSKU: 'Ubuntu'
        type: 'VirtualMachineScaleSets'
        enableAutoScaling: true
        count: 0
        minCount: 0
        maxCount: gpuMaxCount
        nodeTaints: [gpuTaint]
        nodeLabels: { 'batchrender.io/accelerator': 'nvidia' }
      }
    ]
  }
}

// Container Insights with Entra ID auth (useAADAuth) collects through a data collection rule associated with
// the cluster; without it the agent runs but sends nothing.
resource containerInsightsRule 'Microsoft.Insights/dataCollectionRules@2022-06-01' = {
  name: 'MSCI-${location}-${clusterName}'
  location: location
  tags: tags
  kind: 'Linux'
  properties: {
    dataSources: {
      extensions: [
        {
          name: 'ContainerInsightsExtension'
          extensionName: 'ContainerInsights'
          streams: ['Microsoft-ContainerInsights-Group-Default']
          extensionSettings: {
            dataCollectionSettings: {
              interval: '1m'
              namespaceFilteringMode: 'Off'
              enableContainerLogV2: true
            }
          }
        }
      ]
    }
    destinations: {
      logAnalytics: [{ name: 'workspace', workspaceResourceId: workspaceId }]
    }
    dataFlows: [
      { streams: ['Microsoft-ContainerInsights-Group-Default'], destinations: ['workspace'] }
    ]
  }
}

resource containerInsightsAssociation 'Microsoft.Insights/dataCollectionRuleAssociations@2022-06-01' = {
  name: 'ContainerInsightsExtension'
  scope: cluster
  properties: {
    dataCollectionRuleId: containerInsightsRule.id
    description: 'Container Insights for the BatchRender cluster'
  }
}

resource diagnostics 'Microsoft.Insights/diagnosticSettings@2021-05-01-preview' = {
  name: 'to-log-analytics'
  scope: cluster
  properties: {
    workspaceId: workspaceId
    logs: [
      { category: 'kube-apiserver', enabled: true }
      { category: 'kube-audit-admin', enabled: true }
      { category: 'cluster-autoscaler', enabled: true }
      { category: 'guard', enabled: true }
    ]
    metrics: [{ category: 'AllMetrics', enabled: true }]
  }
}

output clusterId string = cluster.id
output clusterName string = cluster.name
output oidcIssuerUrl string = cluster.properties.oidcIssuerProfile.issuerURL
output kubeletObjectId string = cluster.properties.identityProfile.kubeletidentity.objectId
