// Event Grid system topics for the subscription: Microsoft.Resources.Subscriptions (ARM writes, actions,
// deletes) and, optionally, Microsoft.ResourceNotifications.HealthResources (availability changes).
// Only one topic per source may exist in a subscription: main.bicep passes create*=false to reuse one.
// Topics created here carry the Event Grid identity, which writes dead letters.
param tags object
param createResourcesTopic bool
param resourcesTopicName string
param createHealthTopic bool
param healthTopicName string
param eventGridIdentityId string

var topicIdentity = {
  type: 'UserAssigned'
  userAssignedIdentities: {
    '${eventGridIdentityId}': {}
  }
}

resource resourcesTopic 'Microsoft.EventGrid/systemTopics@2022-06-15' = if (createResourcesTopic) {
  name: resourcesTopicName
  location: 'global'
  tags: tags
  identity: topicIdentity
  properties: {
    source: subscription().id
    topicType: 'Microsoft.Resources.Subscriptions'
  }
}

resource healthTopic 'Microsoft.EventGrid/systemTopics@2022-06-15' = if (createHealthTopic) {
  name: healthTopicName
  location: 'global'
  tags: tags
  identity: topicIdentity
  properties: {
    source: subscription().id
    topicType: 'Microsoft.ResourceNotifications.HealthResources'
  }
}

output resourcesTopicName string = resourcesTopicName
output healthTopicName string = healthTopicName
