// Optional outcome events: an Event Grid custom topic receiving CloudEvents 1.0 from the app
// (VmssAutoheal.Remediation.Succeeded|Failed|Held|Planned|..., source = the scale set id), which other
// automation (ServiceNow, PagerDuty, Logic Apps, Azure Monitor) subscribes to without code.
// The app publishes with its managed identity: built-in role "EventGrid Data Sender"
// (d5a91429-5739-47e2-a06b-3470a27159e7, https://learn.microsoft.com/azure/role-based-access-control/built-in-roles/integration#eventgrid-data-sender)
// on this topic only; local (key and SAS) authentication is off
// (https://learn.microsoft.com/azure/event-grid/authenticate-with-microsoft-entra-id).
param location string
param tags object
param topicName string
param senderPrincipalId string

var eventGridDataSender = 'd5a91429-5739-47e2-a06b-3470a27159e7'

resource topic 'Microsoft.EventGrid/topics@2022-06-15' = {
  // checkov:skip=CKV_AZURE_193:The Flex Consumption app has no VNet integration, so it publishes over the public endpoint; every publish needs an Entra ID token (local auth is disabled).
  name: topicName
  location: location
  tags: tags
  // subscribers (Service Bus, Event Hubs, storage queues) can then be delivered to with this identity, no keys
  identity: {
    type: 'SystemAssigned'
  }
  properties: {
    inputSchema: 'CloudEventSchemaV1_0'
    disableLocalAuth: true
    publicNetworkAccess: 'Enabled'
  }
}

resource senderAssignment 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(topic.id, senderPrincipalId, eventGridDataSender)
  scope: topic
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', eventGridDataSender)
    principalId: senderPrincipalId
    principalType: 'ServicePrincipal'
  }
}

output endpoint string = topic.properties.endpoint
output topicId string = topic.id
