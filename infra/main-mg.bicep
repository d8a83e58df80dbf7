// vmss-autoheal, management-group mode: ONE deployment watches every subscription under a management group.
//   az deployment mg create --management-group-id <group> --location <region> --template-file infra/main-mg.bicep \
//     --parameters environmentName=<env> location=<region> hostSubscriptionId=<sub> subscriptionIds='["<sub>",...]'
// It deploys main.bicep (the function app, storage, ledger, Key Vault, monitoring) into the host subscription with
// AUTOHEAL_SCOPE set to this management group, the custom role at the management group (assigned there to the app
// identity), and in each listed subscription the Event Grid system topic and, in the second step
// (deployEventSubscriptions=true, once the code is deployed), its event subscriptions to the one function app.
// A subscription that joins the group later is swept at once (Resource Graph finds it, the role reaches it);
// its events need a redeploy with it in subscriptionIds, or the Azure Policy of deployJoinPolicy=true (infra/README.md).
targetScope = 'managementGroup'

@minLength(1)
@maxLength(40)
@description('Name of the environment; used in resource names.')
param environmentName string

@minLength(1)
@description('Azure region of the app and of the per-subscription resource groups.')
param location string

@description('The subscription the function app, its storage and Key Vault live in (it may be under the group or not).')
param hostSubscriptionId string

@description('Subscriptions under the group whose Event Grid events the app receives (a system topic each).')
param subscriptionIds array

@description('AUTOHEAL_EXCLUDE_SUBSCRIPTIONS: subscriptions under the group the app leaves alone (comma-separated GUIDs).')
param autohealExcludeSubscriptions string = ''

@allowed([
  'observe'
  'remediate'
])
@description('AUTOHEAL_MODE of the app.')
param autohealMode string = 'observe'

@description('Assign the read-only observer role instead of the remediator role (only sensible with autohealMode=observe).')
param readOnlyRole bool = false

@description('Second step: create the Event Grid subscriptions in every listed subscription (the function must exist first).')
param deployEventSubscriptions bool = false

@description('Also subscribe to Microsoft.ResourceNotifications.HealthResources in every listed subscription (as main.bicep\'s enableHealthEvents; preview).')
param enableHealthEvents bool = false

@description('Also assign an Azure Policy (deployIfNotExists) that wires Event Grid in every subscription joining the group later, with its own least-privilege identity (app/events-policy.bicep). Deployed in the second step only: the event subscriptions it creates need the function.')
param deployJoinPolicy bool = false

@description('Object id of the person deploying: gets Key Vault Secrets Officer in the host subscription. Empty to skip.')
param principalId string = ''

var tags = {
  'azd-env-name': environmentName
  application: 'vmss-autoheal'
}
var scope = '/providers/Microsoft.Management/managementGroups/${managementGroup().name}'

module app 'main.bicep' = {
  name: 'autoheal-app'
  scope: subscription(hostSubscriptionId)
  params: {
    environmentName: environmentName
    location: location
    principalId: principalId
    autohealScope: scope
    autohealExcludeSubscriptions: autohealExcludeSubscriptions
    autohealMode: autohealMode
    readOnlyRole: readOnlyRole
    deploySubscriptionRole: false
    deploySubscriptionEvents: false
  }
}

module role 'app/remediator-role-mg.bicep' = {
  name: 'autoheal-remediator-role'
  params: {
    principalId: app.outputs.AZURE_APP_PRINCIPAL_ID
    readOnly: readOnlyRole
  }
}

// In each listed subscription exactly what main.bicep deploys in its own: app/events.bicep, through this wrapper.
module events 'app/subscription-events.bicep' = [for subscriptionId in subscriptionIds: {
  name: 'autoheal-events-${take(uniqueString(subscriptionId, environmentName), 8)}'
  scope: subscription(subscriptionId)
  params: {
    location: location
    tags: tags
    resourceGroupName: 'rg-${environmentName}-events'
    topicName: 'evgt-autoheal-resources-${uniqueString(subscriptionId, environmentName)}'
    healthTopicName: 'evgt-autoheal-health-${uniqueString(subscriptionId, environmentName)}'
    enableHealthEvents: enableHealthEvents
    eventGridIdentityId: app.outputs.AZURE_EVENTGRID_IDENTITY_ID
    deployEventSubscriptions: deployEventSubscriptions
    functionAppId: app.outputs.AZURE_FUNCTION_APP_ID
    deadLetterStorageId: app.outputs.AZURE_STORAGE_ACCOUNT_ID
    deadLetterContainerName: 'eventgrid-deadletter'
  }
}]

// Optional: subscriptions that join later get the same wiring from Azure Policy (infra/README.md).
module joinPolicy 'app/events-policy.bicep' = if (deployJoinPolicy && deployEventSubscriptions) {
  name: 'autoheal-join-policy'
  params: {
    environmentName: environmentName
    location: location
    tags: tags
    functionAppId: app.outputs.AZURE_FUNCTION_APP_ID
    eventGridIdentityId: app.outputs.AZURE_EVENTGRID_IDENTITY_ID
    deadLetterStorageId: app.outputs.AZURE_STORAGE_ACCOUNT_ID
    deadLetterContainerName: 'eventgrid-deadletter'
    enableHealthEvents: enableHealthEvents
    excludedSubscriptions: empty(autohealExcludeSubscriptions) ? [] : split(replace(autohealExcludeSubscriptions, ' ', ''), ',')
    hostSubscriptionId: hostSubscriptionId
    hostResourceGroupName: app.outputs.AZURE_RESOURCE_GROUP
    functionAppName: app.outputs.AZURE_FUNCTION_APP_NAME
    storageAccountName: app.outputs.AZURE_STORAGE_ACCOUNT_NAME
  }
}

output AZURE_FUNCTION_APP_NAME string = app.outputs.AZURE_FUNCTION_APP_NAME
output AZURE_REMEDIATOR_ROLE_NAME string = role.outputs.roleName
output AUTOHEAL_SCOPE string = scope
