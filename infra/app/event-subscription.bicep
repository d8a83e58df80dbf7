// One Event Grid subscription on a system topic, delivering to the Event Grid trigger of the function
// (endpointType AzureFunction). Deployed in the second step: the function must exist first.
// Deployed in the topic's resource group (a reused topic may live elsewhere).
param topicName string
param subscriptionName string
param functionAppId string
param functionName string
param includedEventTypes array
param advancedFilters array
param deadLetterStorageId string
param deadLetterContainerName string
@allowed([
  'UserAssigned'
  'SystemAssigned'
  'None'
])
@description('Identity the topic uses to write dead letters: our Event Grid identity (topics we created), the reused topic\'s own, or none.')
param deadLetterIdentity string
param eventGridIdentityId string
@description('Events are hints (the sweep is the backstop): retry for two hours at most.')
param maxDeliveryAttempts int = 10
param eventTimeToLiveInMinutes int = 120

resource topic 'Microsoft.EventGrid/systemTopics@2022-06-15' existing = {
  name: topicName
}

var deadLetterDestination = {
  endpointType: 'StorageBlob'
  properties: {
    resourceId: deadLetterStorageId
    blobContainerName: deadLetterContainerName
  }
}
var deadLetterIdentities = {
  UserAssigned: {
    type: 'UserAssigned'
    userAssignedIdentity: eventGridIdentityId
  }
  SystemAssigned: {
    type: 'SystemAssigned'
  }
  None: {}
}
var deadLettering = deadLetterIdentity == 'None' ? {} : {
  deadLetterWithResourceIdentity: {
    identity: deadLetterIdentities[deadLetterIdentity]
    deadLetterDestination: deadLetterDestination
  }
}

resource eventSubscription 'Microsoft.EventGrid/systemTopics/eventSubscriptions@2022-06-15' = {
  parent: topic
  name: subscriptionName
  properties: union({
    destination: {
      endpointType: 'AzureFunction'
      properties: {
        resourceId: '${functionAppId}/functions/${functionName}'
        maxEventsPerBatch: 1
        preferredBatchSizeInKilobytes: 64
      }
    }
    eventDeliverySchema: 'EventGridSchema'
    filter: {
      includedEventTypes: includedEventTypes
      advancedFilters: advancedFilters
    }
    retryPolicy: {
      maxDeliveryAttempts: maxDeliveryAttempts
      eventTimeToLiveInMinutes: eventTimeToLiveInMinutes
    }
  }, deadLettering)
}

output id string = eventSubscription.id
