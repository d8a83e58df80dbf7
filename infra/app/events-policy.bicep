// Management-group mode, optional (main-mg.bicep deployJoinPolicy=true, in the second step): an Azure Policy that
// gives a subscription joining the group its Event Grid wiring without a redeploy. Microsoft's pattern:
// - deployIfNotExists on the subscription itself (`if` type Microsoft.Resources/subscriptions, deploymentScope
//   Subscription, a `location` on the deployment, nested deployments named from deployment().name), evaluated when a
//   subscription is created or moved into the group (learn.microsoft.com/azure/governance/policy/concepts/
//   effect-deploy-if-not-exists; .../policy/how-to/get-compliance-data#evaluation-triggers);
// - the remediation identity is the assignment's system-assigned identity; roleDefinitionIds names the least role it
//   needs, and a template deployment must grant that role itself, as it must grant roles on what lies outside the
//   assignment's scope (learn.microsoft.com/azure/governance/policy/how-to/remediate-resources, "Grant permissions to
//   the managed identity through defined roles");
// - the policy definition JSON loaded with loadJsonContent, as Azure/ALZ-Bicep loads its custom policy definitions.
// The deployment it embeds (policy/subscription-events.json) creates what subscription-events.bicep creates, with
// the same names, so a redeploy and the policy converge on one set of resources (tests/infra/test_join_policy.py).
targetScope = 'managementGroup'

param environmentName string
@description('Region of the deployment the policy runs and of the assignment\'s identity.')
param location string
param tags object
param functionAppId string
param eventGridIdentityId string
param deadLetterStorageId string
param deadLetterContainerName string
param enableHealthEvents bool
@description('Subscriptions under the group the policy leaves alone (AUTOHEAL_EXCLUDE_SUBSCRIPTIONS).')
param excludedSubscriptions array
@description('The host subscription and resource group of the app: the identity gets its few rights there too.')
param hostSubscriptionId string
param hostResourceGroupName string
param functionAppName string
param storageAccountName string

// What the remediation deployment does in a joining subscription, nothing more: create the resource group, the
// system topics and their event subscriptions (no delete, no other provider). Event Grid also checks
// Microsoft.EventGrid/eventSubscriptions/write on the event source, here the subscription
// (learn.microsoft.com/azure/event-grid/security-authorization, "Permissions for event subscriptions").
var wiringActions = [
  'Microsoft.Resources/deployments/read'
  'Microsoft.Resources/deployments/write'
  'Microsoft.Resources/deployments/operations/read'
  'Microsoft.Resources/deployments/operationstatuses/read'
  'Microsoft.Resources/subscriptions/resourceGroups/read'
  'Microsoft.Resources/subscriptions/resourceGroups/write'
  'Microsoft.EventGrid/systemTopics/read'
  'Microsoft.EventGrid/systemTopics/write'
  'Microsoft.EventGrid/systemTopics/eventSubscriptions/read'
  'Microsoft.EventGrid/systemTopics/eventSubscriptions/write'
  'Microsoft.EventGrid/eventSubscriptions/write'
]

var policyName = 'vmss-autoheal-events-${environmentName}'
// Policy assignment names at management-group scope are at most 24 characters.
var assignmentName = 'autoheal-ev-${take(uniqueString(managementGroup().id, environmentName), 12)}'

resource wiringRole 'Microsoft.Authorization/roleDefinitions@2022-04-01' = {
  name: guid(managementGroup().id, 'vmss-autoheal-event-wiring', environmentName)
  properties: {
    roleName: 'VMSS Autoheal Event Wiring ${environmentName} ${managementGroup().name}'
    description: 'vmss-autoheal join policy: create the Event Grid system topics and event subscriptions of a subscription joining the management group.'
    type: 'CustomRole'
    permissions: [
      {
        actions: wiringActions
        notActions: []
      }
    ]
    assignableScopes: [
      managementGroup().id
    ]
  }
}

resource definition 'Microsoft.Authorization/policyDefinitions@2023-04-01' = {
  name: policyName
  properties: {
    policyType: 'Custom'
    mode: 'All'
    displayName: 'vmss-autoheal (${environmentName}): Event Grid wiring in every subscription of the management group'
    description: 'Deploys the resource group, the Microsoft.Resources.Subscriptions system topic (and, with enableHealthEvents, the HealthResources one) and the event subscriptions delivering to the vmss-autoheal function app, in a subscription that lacks them.'
    metadata: {
      category: 'Event Grid'
      version: '1.0.0'
    }
    parameters: {
      effect: {
        type: 'String'
        defaultValue: 'DeployIfNotExists'
        allowedValues: [
          'DeployIfNotExists'
          'AuditIfNotExists'
          'Disabled'
        ]
        metadata: {
          displayName: 'Effect'
        }
      }
      excludedSubscriptions: {
        type: 'Array'
        defaultValue: []
        metadata: {
          displayName: 'Subscriptions left alone (AUTOHEAL_EXCLUDE_SUBSCRIPTIONS)'
        }
      }
      environmentName: {
        type: 'String'
      }
      location: {
        type: 'String'
      }
      tags: {
        type: 'Object'
      }
      functionAppId: {
        type: 'String'
      }
      eventGridIdentityId: {
        type: 'String'
      }
      deadLetterStorageId: {
        type: 'String'
      }
      deadLetterContainerName: {
        type: 'String'
      }
      enableHealthEvents: {
        type: 'Boolean'
      }
    }
    policyRule: {
      if: {
        allOf: [
          {
            field: 'type'
            equals: 'Microsoft.Resources/subscriptions'
          }
          {
            value: '[subscription().subscriptionId]'
            notIn: '[parameters(\'excludedSubscriptions\')]'
          }
        ]
      }
      then: {
        effect: '[parameters(\'effect\')]'
        details: {
          // The scale-set operations subscription on the topic, named as subscription-events.bicep names it.
          type: 'Microsoft.EventGrid/systemTopics/eventSubscriptions'
          name: '[concat(\'evgt-autoheal-resources-\', uniqueString(subscription().subscriptionId, parameters(\'environmentName\')), \'/autoheal-scale-set-operations\')]'
          resourceGroupName: '[concat(\'rg-\', parameters(\'environmentName\'), \'-events\')]'
          existenceScope: 'ResourceGroup'
          deploymentScope: 'Subscription'
          // It delivers to this app's function. The alias follows the scheme of Microsoft's documented
          // destination aliases (destination.EventHub.resourceId, destination.WebHook.endpointUrl:
          // learn.microsoft.com/azure/event-grid/custom-azure-policies-for-security-control); unverified for
          // AzureFunction: `az provider show -n Microsoft.EventGrid --expand resourceTypes/aliases` lists them.
          existenceCondition: {
            field: 'Microsoft.EventGrid/systemTopics/eventSubscriptions/destination.AzureFunction.resourceId'
            equals: '[concat(parameters(\'functionAppId\'), \'/functions/on_resource_event\')]'
          }
          roleDefinitionIds: [
            tenantResourceId('Microsoft.Authorization/roleDefinitions', wiringRole.name)
          ]
          deployment: {
            location: location
            properties: {
              mode: 'incremental'
              template: loadJsonContent('policy/subscription-events.json')
              parameters: {
                environmentName: {
                  value: '[parameters(\'environmentName\')]'
                }
                location: {
                  value: '[parameters(\'location\')]'
                }
                tags: {
                  value: '[parameters(\'tags\')]'
                }
                eventGridIdentityId: {
                  value: '[parameters(\'eventGridIdentityId\')]'
                }
                functionAppId: {
                  value: '[parameters(\'functionAppId\')]'
                }
                deadLetterStorageId: {
                  value: '[parameters(\'deadLetterStorageId\')]'
                }
                deadLetterContainerName: {
                  value: '[parameters(\'deadLetterContainerName\')]'
                }
                enableHealthEvents: {
                  value: '[parameters(\'enableHealthEvents\')]'
                }
              }
            }
          }
        }
      }
    }
  }
}

resource assignment 'Microsoft.Authorization/policyAssignments@2024-04-01' = {
  name: assignmentName
  location: location
  identity: {
    type: 'SystemAssigned'
  }
  properties: {
    policyDefinitionId: definition.id
    displayName: 'vmss-autoheal (${environmentName}): Event Grid wiring of joining subscriptions'
    enforcementMode: 'Default'
    parameters: {
      excludedSubscriptions: {
        value: excludedSubscriptions
      }
      environmentName: {
        value: environmentName
      }
      location: {
        value: location
      }
      tags: {
        value: tags
      }
      functionAppId: {
        value: functionAppId
      }
      eventGridIdentityId: {
        value: eventGridIdentityId
      }
      deadLetterStorageId: {
        value: deadLetterStorageId
      }
      deadLetterContainerName: {
        value: deadLetterContainerName
      }
      enableHealthEvents: {
        value: enableHealthEvents
      }
    }
  }
}

resource wiringAssignment 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(managementGroup().id, assignmentName, 'event-wiring')
  properties: {
    roleDefinitionId: wiringRole.id
    principalId: assignment.identity.principalId
    principalType: 'ServicePrincipal'
    description: 'vmss-autoheal join policy: remediation identity'
  }
}

// Outside the assignment's scope (the app may live outside the group): the identity the topics use, the function
// the event subscriptions deliver to and the dead-letter account, each granted on that one resource.
module hostGrants 'events-policy-host.bicep' = {
  name: 'autoheal-join-policy-grants'
  scope: resourceGroup(hostSubscriptionId, hostResourceGroupName)
  params: {
    principalId: assignment.identity.principalId
    assignmentName: assignmentName
    functionAppName: functionAppName
    storageAccountName: storageAccountName
    eventGridIdentityName: last(split(eventGridIdentityId, '/'))
  }
}

output policyAssignmentId string = assignment.id
output remediationPrincipalId string = assignment.identity.principalId
