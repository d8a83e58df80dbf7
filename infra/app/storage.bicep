// The function's storage account: identity-only access (no shared keys), the Flex Consumption
// deployment container, the ledger table and the Event Grid dead-letter container.
// Queues are not used (no Queue Data Contributor); add it when the sweep fans out through a queue.
param location string
param tags object
param storageAccountName string
param deploymentContainerName string
param deadLetterContainerName string
param ledgerTableName string
param appPrincipalId string
param eventGridPrincipalId string
@description('System-assigned identities of reused Event Grid system topics (dead-letter writers).')
param existingTopicPrincipalIds array = []
@description('Grant the app the queue data role (management-group scope: the sweep fan-out queue).')
param queueAccess bool = false

var blobDataOwner = subscriptionResourceId('Microsoft.Authorization/roleDefinitions', 'b7e6dc6d-f1e8-4753-8033-0f276bb0955b')
var blobDataContributor = subscriptionResourceId('Microsoft.Authorization/roleDefinitions', 'ba92f5b4-2d11-453d-a403-e96b0029c9fe')
var tableDataContributor = subscriptionResourceId('Microsoft.Authorization/roleDefinitions', '0a9a7e1f-b9d0-4cc4-a60d-0319b160aaa3')
// Storage Queue Data Contributor: the management-group fan-out's queue (the timer creates and fills it, the
// queue trigger reads and deletes; identity-based AzureWebJobsStorage, learn.microsoft.com/azure/azure-functions/
// functions-bindings-storage-queue#identity-based-connections). Only used with AUTOHEAL_SCOPE a management group.
var queueDataContributor = subscriptionResourceId('Microsoft.Authorization/roleDefinitions', '974c5e8b-45b9-4653-ba55-5f855dd0fb88')

resource storage 'Microsoft.Storage/storageAccounts@2023-05-01' = {
  // checkov:skip=CKV_AZURE_35:A Flex Consumption app without VNet integration reaches its storage over the public endpoint; every request needs an Entra ID token (shared keys are disabled).
  // checkov:skip=CKV_AZURE_59:Same as CKV_AZURE_35: the public endpoint stays reachable, anonymous blob access and shared keys are disabled.
  // checkov:skip=CKV_AZURE_206:LRS is enough: the account holds a rebuildable deployment package, dead letters, and a ledger whose loss only resets history and cooldowns; ZRS is not offered in every Flex Consumption region.
  // checkov:skip=CKV_AZURE_43:The name is computed ('stautoheal' + uniqueString(), 23 lowercase letters and digits); checkov cannot evaluate it.
  name: storageAccountName
  location: location
  tags: tags
  kind: 'StorageV2'
  sku: {
    name: 'Standard_LRS'
  }
  properties: {
    accessTier: 'Hot'
    allowBlobPublicAccess: false
    allowSharedKeyAccess: false
    allowCrossTenantReplication: false
    defaultToOAuthAuthentication: true
    minimumTlsVersion: 'TLS1_2'
    supportsHttpsTrafficOnly: true
    publicNetworkAccess: 'Enabled'
    networkAcls: {
      defaultAction: 'Allow'
      bypass: 'AzureServices'
    }
    encryption: {
      keySource: 'Microsoft.Storage'
      requireInfrastructureEncryption: true
      services: {
        blob: {
          enabled: true
        }
        table: {
          enabled: true
        }
        queue: {
          enabled: true
        }
      }
    }
  }
}

resource blobService 'Microsoft.Storage/storageAccounts/blobServices@2023-05-01' = {
  parent: storage
  name: 'default'
}

resource deploymentContainer 'Microsoft.Storage/storageAccounts/blobServices/containers@2023-05-01' = {
  parent: blobService
  name: deploymentContainerName
  properties: {
    publicAccess: 'None'
  }
}

resource deadLetterContainer 'Microsoft.Storage/storageAccounts/blobServices/containers@2023-05-01' = {
  parent: blobService
  name: deadLetterContainerName
  properties: {
    publicAccess: 'None'
  }
}

resource tableService 'Microsoft.Storage/storageAccounts/tableServices@2023-05-01' = {
  parent: storage
  name: 'default'
}

resource ledgerTable 'Microsoft.Storage/storageAccounts/tableServices/tables@2023-05-01' = {
  parent: tableService
  name: ledgerTableName
}

// The Functions host (identity-based AzureWebJobsStorage) needs Blob Data Owner; the ledger needs Table Data Contributor.
resource appBlobOwner 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(storage.id, appPrincipalId, blobDataOwner)
  scope: storage
  properties: {
    roleDefinitionId: blobDataOwner
    principalId: appPrincipalId
    principalType: 'ServicePrincipal'
  }
}

resource appTableContributor 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(storage.id, appPrincipalId, tableDataContributor)
  scope: storage
  properties: {
    roleDefinitionId: tableDataContributor
    principalId: appPrincipalId
    principalType: 'ServicePrincipal'
  }
}

resource appQueueContributor 'Microsoft.Authorization/roleAssignments@2022-04-01' = if (queueAccess) {
  name: guid(storage.id, appPrincipalId, queueDataContributor)
  scope: storage
  properties: {
    roleDefinitionId: queueDataContributor
    principalId: appPrincipalId
    principalType: 'ServicePrincipal'
  }
}

// Event Grid writes dead letters into one container only.
resource eventGridDeadLetter 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(deadLetterContainer.id, eventGridPrincipalId, blobDataContributor)
  scope: deadLetterContainer
  properties: {
    roleDefinitionId: blobDataContributor
    principalId: eventGridPrincipalId
    principalType: 'ServicePrincipal'
  }
}

resource existingTopicDeadLetter 'Microsoft.Authorization/roleAssignments@2022-04-01' = [for topicPrincipalId in existingTopicPrincipalIds: {
  name: guid(deadLetterContainer.id, topicPrincipalId, blobDataContributor)
  scope: deadLetterContainer
  properties: {
    roleDefinitionId: blobDataContributor
    principalId: topicPrincipalId
    principalType: 'ServicePrincipal'
  }
}]

output id string = storage.id
output name string = storage.name
output blobEndpoint string = storage.properties.primaryEndpoints.blob
output tableEndpoint string = storage.properties.primaryEndpoints.table
output ledgerTableName string = ledgerTable.name
