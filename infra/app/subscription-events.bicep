// Management-group mode: Event Grid in one watched subscription. System topics are per subscription (their
// source is the subscription), so each watched subscription gets a resource group holding what main.bicep
// deploys in its own subscription: events.bicep, the same module, with the same topics and event subscriptions
// delivering to the one function app in the host subscription (tests/infra/test_management_group_mode.py).
targetScope = 'subscription'

param location string
param tags object
param resourceGroupName string
@description('Name of the Microsoft.Resources.Subscriptions system topic created here.')
param topicName string
@description('Name of the Microsoft.ResourceNotifications.HealthResources system topic (with enableHealthEvents).')
param healthTopicName string
param enableHealthEvents bool
param eventGridIdentityId string
param deployEventSubscriptions bool
param functionAppId string
param deadLetterStorageId string
param deadLetterContainerName string

resource rg 'Microsoft.Resources/resourceGroups@2024-03-01' = {
  name: resourceGroupName
  location: location
  tags: tags
}

module events 'events.bicep' = {
  name: 'autoheal-eventgrid'
  scope: rg
  params: {
    tags: tags
    createResourcesTopic: true
    resourcesTopicName: topicName
    resourcesDeadLetterIdentity: 'UserAssigned'
    enableHealthEvents: enableHealthEvents
    createHealthTopic: true
    healthTopicName: healthTopicName
    healthDeadLetterIdentity: 'UserAssigned'
    eventGridIdentityId: eventGridIdentityId
    deployEventSubscriptions: deployEventSubscriptions
    functionAppId: functionAppId
    deadLetterStorageId: deadLetterStorageId
    deadLetterContainerName: deadLetterContainerName
  }
}

output topicName string = events.outputs.resourcesTopicName
output healthTopicName string = events.outputs.healthTopicName
