// The custom roles at subscription scope and the assignment of one of them to the app identity.
// Remediator: exactly what autoheal/gateway/ declares with @requires (tests/infra checks the cover),
// the operation reads long-running operations poll, and the linked actions ARM checks when a scale-set
// write re-validates the resources the model references. Observer: the read actions only.
targetScope = 'subscription'

param principalId string
@description('Assign the observer (read-only) role instead of the remediator role.')
param readOnly bool = false

// Reads: listing scale sets, instance views, instances (Uniform and Flexible), operation status, and the
// Resource Graph inventory (Microsoft.ResourceGraph/resources/read: 'Query resources', ARG's OperationsList).
var readActions = [
  'Microsoft.Compute/virtualMachineScaleSets/read'
  'Microsoft.Compute/virtualMachineScaleSets/instanceView/read'
  'Microsoft.Compute/virtualMachineScaleSets/virtualMachines/read'
  'Microsoft.Compute/virtualMachineScaleSets/virtualMachines/instanceView/read'
  'Microsoft.Compute/virtualMachines/read'
  'Microsoft.Compute/virtualMachines/instanceView/read'
  'Microsoft.Compute/locations/operations/read'
  'Microsoft.Resources/subscriptions/resourceGroups/read'
  'Microsoft.ResourceGraph/resources/read'
  // Who suspended automatic repairs: the Activity Log ('List Activity Log events (management events) in a
  // subscription'; azure-monitor roles-permissions-security), read only for suspended scale sets.
  'Microsoft.Insights/eventtypes/values/read'
]

// Writes the gateway performs.
var writeActions = [
  'Microsoft.Compute/virtualMachineScaleSets/write'
  'Microsoft.Compute/virtualMachineScaleSets/setOrchestrationServiceState/action'
  'Microsoft.Compute/virtualMachineScaleSets/delete/action'
  'Microsoft.Compute/virtualMachineScaleSets/virtualMachines/restart/action'
  'Microsoft.Compute/virtualMachineScaleSets/virtualMachines/reimage/action'
  'Microsoft.Compute/virtualMachineScaleSets/virtualMachines/redeploy/action'
  'Microsoft.Compute/virtualMachines/delete'
  'Microsoft.Compute/virtualMachines/restart/action'
  'Microsoft.Compute/virtualMachines/reimage/action'
  'Microsoft.Compute/virtualMachines/redeploy/action'
]

// Linked access checks of a scale-set PUT/PATCH (a capacity PATCH creates instances from the model).
var linkedActions = [
  'Microsoft.Network/virtualNetworks/subnets/join/action'
  'Microsoft.Network/loadBalancers/backendAddressPools/join/action'
  'Microsoft.Network/loadBalancers/inboundNatPools/join/action'
  'Microsoft.Network/applicationGateways/backendAddressPools/join/action'
  'Microsoft.Network/networkSecurityGroups/join/action'
  'Microsoft.Network/applicationSecurityGroups/joinIpConfiguration/action'
  'Microsoft.ManagedIdentity/userAssignedIdentities/assign/action'
  'Microsoft.Compute/galleries/images/read'
  'Microsoft.Compute/galleries/images/versions/read'
  'Microsoft.Compute/images/read'
]

resource remediator 'Microsoft.Authorization/roleDefinitions@2022-04-01' = {
  name: guid(subscription().id, 'vmss-autoheal-remediator')
  properties: {
    roleName: 'VMSS Autoheal Remediator ${subscription().subscriptionId}'
    description: 'vmss-autoheal: read scale sets and carry out the documented remediations (repairs policy, resume, replace, restart/reimage/redeploy, delete, capacity).'
    type: 'CustomRole'
    permissions: [
      {
        actions: concat(readActions, writeActions, linkedActions)
        notActions: []
      }
    ]
    assignableScopes: [
      subscription().id
    ]
  }
}

resource observer 'Microsoft.Authorization/roleDefinitions@2022-04-01' = {
  name: guid(subscription().id, 'vmss-autoheal-observer')
  properties: {
    roleName: 'VMSS Autoheal Observer ${subscription().subscriptionId}'
    description: 'vmss-autoheal in observe mode: read scale sets, their instances and instance views; change nothing.'
    type: 'CustomRole'
    permissions: [
      {
        actions: readActions
        notActions: []
      }
    ]
    assignableScopes: [
      subscription().id
    ]
  }
}

var assignedRoleId = readOnly ? observer.id : remediator.id

resource assignment 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(subscription().id, principalId, readOnly ? 'observer' : 'remediator')
  properties: {
    roleDefinitionId: assignedRoleId
    principalId: principalId
    principalType: 'ServicePrincipal'
    description: 'vmss-autoheal function app identity'
  }
}

output roleName string = readOnly ? observer.properties.roleName : remediator.properties.roleName
output roleDefinitionId string = assignedRoleId
