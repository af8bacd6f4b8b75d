// User-assigned identities for the worker pods and for KEDA's scaler, each federated to the Kubernetes
// service account that uses it (AKS workload identity). Created after the cluster: the federation needs
// the cluster's OIDC issuer.

@description('Azure region.')
param location string

@description('Tags applied to every resource.')
param tags object

@description('Name of the worker identity.')
param workerIdentityName string

@description('Name of the identity KEDA uses to read the queue length.')
param kedaIdentityName string

@description('OIDC issuer URL of the AKS cluster.')
param oidcIssuerUrl string

@description('Kubernetes namespace of the worker (must match infra/k8s).')
param workerNamespace string

@description('Kubernetes service account of the worker (must match infra/k8s).')
param workerServiceAccountName string

@description('Namespace of the KEDA operator installed by the AKS KEDA add-on.')
param kedaOperatorNamespace string = 'kube-system'

@description('Service account of the KEDA operator installed by the AKS KEDA add-on.')
param kedaOperatorServiceAccountName string = 'keda-operator'

var tokenAudience = 'api://AzureADTokenExchange'

resource workerIdentity 'Microsoft.ManagedIdentity/userAssignedIdentities@2023-01-31' = {
  name: workerIdentityName
  location: location
  tags: tags
}

resource workerFederation 'Microsoft.ManagedIdentity/userAssignedIdentities/federatedIdentityCredentials@2023-01-31' = {
  parent: workerIdentity
  name: 'aks-${workerNamespace}-${workerServiceAccountName}'
  properties: {
    issuer: oidcIssuerUrl
    subject: 'system:serviceaccount:${workerNamespace}:${workerServiceAccountName}'
    audiences: [tokenAudience]
  }
}

resource kedaIdentity 'Microsoft.ManagedIdentity/userAssignedIdentities@2023-01-31' = {
  name: kedaIdentityName
  location: location
  tags: tags
}

resource kedaFederation 'Microsoft.ManagedIdentity/userAssignedIdentities/federatedIdentityCredentials@2023-01-31' = {
  parent: kedaIdentity
  name: 'aks-${kedaOperatorNamespace}-${kedaOperatorServiceAccountName}'
  properties: {
    issuer: oidcIssuerUrl
    subject: 'system:serviceaccount:${kedaOperatorNamespace}:${kedaOperatorServiceAccountName}'
    audiences: [tokenAudience]
  }
  // Federated credentials on one identity must be written one at a time; on different identities this is
  // not needed, but keeping the writes serial avoids throttling on the identity resource provider.
  dependsOn: [workerFederation]
}

output workerClientId string = workerIdentity.properties.clientId
output workerPrincipalId string = workerIdentity.properties.principalId
output workerFederatedSubject string = workerFederation.properties.subject
output kedaClientId string = kedaIdentity.properties.clientId
output kedaPrincipalId string = kedaIdentity.properties.principalId
