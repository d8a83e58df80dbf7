// The Event Grid wiring of one subscription, shared by both modes: main.bicep deploys it into its own
// resource group; main-mg.bicep (through subscription-events.bicep) into a resource group of every listed
// subscription. The system topics (eventgrid-topics.bicep) now; in the second step (deployEventSubscriptions, the
// function must exist first) the event subscriptions delivering to the one function app.
// The event types, filters and function name are the contract with autoheal/events.py (tests/infra checks them).

param tags object

@description('Create the Microsoft.Resources.Subscriptions system topic (false: reuse resourcesTopicName).')
param createResourcesTopic bool = true
param resourcesTopicName string
@description('Resource group of the resources topic (a reused one may live elsewhere).')
param resourcesTopicResourceGroup string = resourceGroup().name
@allowed([
  'UserAssigned'
  'SystemAssigned'
  'None'
])
@description('Identity the resources topic writes dead letters with (see event-subscription.bicep).')
param resourcesDeadLetterIdentity string = 'UserAssigned'

@description('Also subscribe to Microsoft.ResourceNotifications.HealthResources (availability changes of VMs; preview).')
param enableHealthEvents bool = false
@description('Create the HealthResources system topic (false: reuse healthTopicName).')
param createHealthTopic bool = true
param healthTopicName string
param healthTopicResourceGroup string = resourceGroup().name
@allowed([
  'UserAssigned'
  'SystemAssigned'
  'None'
])
param healthDeadLetterIdentity string = 'UserAssigned'

param eventGridIdentityId string
@description('Second step: create the event subscriptions (the function must exist first).')
param deployEventSubscriptions bool
param functionAppId string
param deadLetterStorageId string
param deadLetterContainerName string

// The contract with autoheal/events.py (tests/infra checks these equal the handler's constants).
var eventFunctionName = 'on_resource_event'
var resourceEventTypes = [
  'Microsoft.Resources.ResourceWriteSuccess'
  'Microsoft.Resources.ResourceWriteFailure'
  'Microsoft.Resources.ResourceActionSuccess'
  'Microsoft.Resources.ResourceActionFailure'
  'Microsoft.Resources.ResourceDeleteSuccess'
  'Microsoft.Resources.ResourceDeleteFailure'
]
var healthEventTypes = [
  'Microsoft.ResourceNotifications.HealthResources.AvailabilityStatusChanged'
  'Microsoft.ResourceNotifications.HealthResources.ResourceAnnotated'
]
// Failures of a Flexible scale set's own VMs: one more subscription on the same topic, failures only, so
// the function is not woken for every successful VM write in the subscription.
var vmFailureEventTypes = [
  'Microsoft.Resources.ResourceWriteFailure'
  'Microsoft.Resources.ResourceActionFailure'
  'Microsoft.Resources.ResourceDeleteFailure'
]
var scaleSetOperationPrefix = 'Microsoft.Compute/virtualMachineScaleSets/'
var vmOperationPrefix = 'Microsoft.Compute/virtualMachines/'
var resourceEventFilters = [
  {
    operatorType: 'StringBeginsWith'
    key: 'data.operationName'
    values: [
      scaleSetOperationPrefix
    ]
  }
]
var vmFailureEventFilters = [
  {
    operatorType: 'StringBeginsWith'
    key: 'data.operationName'
    values: [
      vmOperationPrefix
    ]
  }
]
// Health events carry no operationName: keep VM and scale-set targets (both start with this).
var healthEventFilters = [
  {
    operatorType: 'StringBeginsWith'
    key: 'data.resourceInfo.properties.targetResourceType'
    values: [
      'Microsoft.Compute/virtualMachine'
    ]
  }
]

module topics 'eventgrid-topics.bicep' = {
  name: 'eventgrid-topics'
  params: {
    tags: tags
    createResourcesTopic: createResourcesTopic
    resourcesTopicName: resourcesTopicName
    createHealthTopic: enableHealthEvents && createHealthTopic
    healthTopicName: healthTopicName
    eventGridIdentityId: eventGridIdentityId
  }
}

module resourceEventSubscription 'event-subscription.bicep' = if (deployEventSubscriptions) {
  name: 'eventgrid-subscription-resources'
  scope: resourceGroup(resourcesTopicResourceGroup)
  params: {
    topicName: topics.outputs.resourcesTopicName
    subscriptionName: 'autoheal-scale-set-operations'
    functionAppId: functionAppId
    functionName: eventFunctionName
    includedEventTypes: resourceEventTypes
    advancedFilters: resourceEventFilters
    deadLetterStorageId: deadLetterStorageId
    deadLetterContainerName: deadLetterContainerName
    deadLetterIdentity: resourcesDeadLetterIdentity
    eventGridIdentityId: eventGridIdentityId
  }
}

module vmFailureEventSubscription 'event-subscription.bicep' = if (deployEventSubscriptions) {
  name: 'eventgrid-subscription-vm-failures'
  scope: resourceGroup(resourcesTopicResourceGroup)
  params: {
    topicName: topics.outputs.resourcesTopicName
    subscriptionName: 'autoheal-vm-failures'
    functionAppId: functionAppId
    functionName: eventFunctionName
    includedEventTypes: vmFailureEventTypes
    advancedFilters: vmFailureEventFilters
    deadLetterStorageId: deadLetterStorageId
    deadLetterContainerName: deadLetterContainerName
    deadLetterIdentity: resourcesDeadLetterIdentity
    eventGridIdentityId: eventGridIdentityId
  }
}

module healthEventSubscription 'event-subscription.bicep' = if (deployEventSubscriptions && enableHealthEvents) {
  name: 'eventgrid-subscription-health'
  scope: resourceGroup(healthTopicResourceGroup)
  params: {
    topicName: topics.outputs.healthTopicName
    subscriptionName: 'autoheal-vm-health'
    functionAppId: functionAppId
    functionName: eventFunctionName
    includedEventTypes: healthEventTypes
    advancedFilters: healthEventFilters
    deadLetterStorageId: deadLetterStorageId
    deadLetterContainerName: deadLetterContainerName
    deadLetterIdentity: healthDeadLetterIdentity
    eventGridIdentityId: eventGridIdentityId
  }
}

output resourcesTopicName string = topics.outputs.resourcesTopicName
output healthTopicName string = enableHealthEvents ? topics.outputs.healthTopicName : ''
