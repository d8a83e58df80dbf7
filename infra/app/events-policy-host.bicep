// The join policy's remediation identity in the app's own resource group: a custom role with only what creating an
// event subscription to the app needs on the app's side, assigned on each of the three resources alone.
// - Microsoft.ManagedIdentity/userAssignedIdentities/assign/action on the Event Grid identity: the topics it creates
//   carry that identity, which writes dead letters (as in eventgrid-topics.bicep);
// - write access on the function: "If you're using an event handler that isn't a WebHook ..., you need write access
//   to that resource" (learn.microsoft.com/azure/event-grid/security-authorization, "Permissions for event
//   subscriptions"); Event Grid checks it with an RBAC check on the function (Event Grid's PM in
//   github.com/Azure/azure-cli/issues/10879). Which action it checks is not documented: functions/write is the
//   reading of "write access" (unverified);
// - read on the dead-letter storage account (its metadata only: no keys, no data).
param principalId string
param assignmentName string
param functionAppName string
param storageAccountName string
param eventGridIdentityName string

resource hostRole 'Microsoft.Authorization/roleDefinitions@2022-04-01' = {
  name: guid(resourceGroup().id, 'vmss-autoheal-event-wiring-host')
  properties: {
    roleName: 'VMSS Autoheal Event Wiring Host ${subscription().subscriptionId} ${resourceGroup().name}'
    description: 'vmss-autoheal join policy: point new Event Grid subscriptions at the app, its identity and its dead-letter account.'
    type: 'CustomRole'
    permissions: [
      {
        actions: [
          'Microsoft.Web/sites/read'
          'Microsoft.Web/sites/functions/read'
          'Microsoft.Web/sites/functions/write'
          'Microsoft.Storage/storageAccounts/read'
          'Microsoft.ManagedIdentity/userAssignedIdentities/read'
          'Microsoft.ManagedIdentity/userAssignedIdentities/assign/action'
        ]
        notActions: []
      }
    ]
    assignableScopes: [
      resourceGroup().id
    ]
  }
}

resource functionApp 'Microsoft.Web/sites@2024-04-01' existing = {
  name: functionAppName
}

resource storage 'Microsoft.Storage/storageAccounts@2023-05-01' existing = {
  name: storageAccountName
}

resource eventGridIdentity 'Microsoft.ManagedIdentity/userAssignedIdentities@2023-01-31' existing = {
  name: eventGridIdentityName
}

resource onFunctionApp 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(functionApp.id, assignmentName, 'event-wiring')
  scope: functionApp
  properties: {
    roleDefinitionId: hostRole.id
    principalId: principalId
    principalType: 'ServicePrincipal'
  }
}

resource onStorage 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(storage.id, assignmentName, 'event-wiring')
  scope: storage
  properties: {
    roleDefinitionId: hostRole.id
    principalId: principalId
    principalType: 'ServicePrincipal'
  }
}

resource onEventGridIdentity 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(eventGridIdentity.id, assignmentName, 'event-wiring')
  scope: eventGridIdentity
  properties: {
    roleDefinitionId: hostRole.id
    principalId: principalId
    principalType: 'ServicePrincipal'
  }
}
