// Management-group mode: Event Grid in one watched subscription. System topics are per subscription (their
// source is the subscription), so each watched subscription gets a resource group with its
// Microsoft.Resources.Subscriptions topic and, in the second step, the event subscriptions delivering to the one
// function app in the host subscription (the same event types and filters as main.bicep's).
targetScope = 'subscription'

param location string
param tags object
param resourceGroupName string
param topicName string
param eventGridIdentityId string
param deployEventSubscriptions bool
param functionAppId string
param functionName string
param resourceEventTypes array
param resourceEventFilters array
param vmFailureEventTypes array
param vmFailureEventFilters array
param deadLetterStorageId string
param deadLetterContainerName string

resource rg 'Microsoft.Resources/resourceGroups@2024-03-01' = {
  name: resourceGroupName
  location: location
  tags: tags
}

module topics 'eventgrid-topics.bicep' = {
  name: 'autoheal-eventgrid-topics'
  scope: rg
  params: {
    tags: tags
    createResourcesTopic: true
    resourcesTopicName: topicName
    createHealthTopic: false
    healthTopicName: ''
    eventGridIdentityId: eventGridIdentityId
  }
}

module resourceEvents 'event-subscription.bicep' = if (deployEventSubscriptions) {
  name: 'autoheal-eventgrid-subscription-resources'
  scope: rg
  params: {
    topicName: topics.outputs.resourcesTopicName
    subscriptionName: 'autoheal-scale-set-operations'
    functionAppId: functionAppId
    functionName: functionName
    includedEventTypes: resourceEventTypes
    advancedFilters: resourceEventFilters
    deadLetterStorageId: deadLetterStorageId
    deadLetterContainerName: deadLetterContainerName
    deadLetterIdentity: 'UserAssigned'
    eventGridIdentityId: eventGridIdentityId
  }
}

module vmFailureEvents 'event-subscription.bicep' = if (deployEventSubscriptions) {
  name: 'autoheal-eventgrid-subscription-vm-failures'
  scope: rg
  params: {
    topicName: topics.outputs.resourcesTopicName
    subscriptionName: 'autoheal-vm-failures'
    functionAppId: functionAppId
    functionName: functionName
    includedEventTypes: vmFailureEventTypes
    advancedFilters: vmFailureEventFilters
    deadLetterStorageId: deadLetterStorageId
    deadLetterContainerName: deadLetterContainerName
    deadLetterIdentity: 'UserAssigned'
    eventGridIdentityId: eventGridIdentityId
  }
}

output topicName string = topics.outputs.resourcesTopicName
