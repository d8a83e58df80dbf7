// Management-group mode: the remediator (or observer) custom role defined at the management group and assigned
// there to the app identity, so it reaches every subscription under it (and new ones as they join).
// Microsoft's limits on custom roles at management-group scope (learn.microsoft.com/azure/role-based-access-control/
// custom-roles, "Custom role limits"; learn.microsoft.com/azure/governance/management-groups/overview, "Azure custom
// role definition and assignment"): only ONE management group may be in AssignableScopes; custom roles with
// DataActions can't be assigned at management-group scope (this role has none); AssignableScopes can't be the root
// scope "/". The actions are exactly those of app/remediator-role.bicep (tests/infra checks they are equal):
// nothing broader than the subscription mode grants.
targetScope = 'managementGroup'

param principalId string
@description('Assign the observer (read-only) role instead of the remediator role.')
param readOnly bool = false

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
  name: guid(managementGroup().id, 'vmss-autoheal-remediator')
  properties: {
    roleName: 'VMSS Autoheal Remediator ${managementGroup().name}'
    description: 'vmss-autoheal (management group): read scale sets and carry out the documented remediations (repairs policy, resume, replace, restart/reimage/redeploy, delete, scale out).'
    type: 'CustomRole'
    permissions: [
      {
        actions: concat(readActions, writeActions, linkedActions)
        notActions: []
      }
    ]
    assignableScopes: [
      managementGroup().id
    ]
  }
}

resource observer 'Microsoft.Authorization/roleDefinitions@2022-04-01' = {
  name: guid(managementGroup().id, 'vmss-autoheal-observer')
  properties: {
    roleName: 'VMSS Autoheal Observer ${managementGroup().name}'
    description: 'vmss-autoheal in observe mode (management group): read scale sets, their instances and instance views; change nothing.'
    type: 'CustomRole'
    permissions: [
      {
        actions: readActions
        notActions: []
      }
    ]
    assignableScopes: [
      managementGroup().id
    ]
  }
}

var assignedRoleId = readOnly ? observer.id : remediator.id

resource assignment 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(managementGroup().id, principalId, readOnly ? 'observer' : 'remediator')
  properties: {
    roleDefinitionId: assignedRoleId
    principalId: principalId
    principalType: 'ServicePrincipal'
    description: 'vmss-autoheal function app identity (management group)'
  }
}

output roleName string = readOnly ? observer.properties.roleName : remediator.properties.roleName
output roleDefinitionId string = assignedRoleId
