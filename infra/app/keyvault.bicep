// Key Vault (RBAC) for the notification secrets. The app reads them through Key Vault references
// (@Microsoft.KeyVault(SecretUri=...)) resolved with its user-assigned identity (Key Vault Secrets User).
// A secret is written here only when its value is passed; it can also be set directly in the vault.
param location string
param tags object
param keyVaultName string
param appPrincipalId string
@description('Person or group allowed to set secrets (Key Vault Secrets Officer); empty to skip.')
param adminPrincipalId string = ''
param adminPrincipalType string = 'User'
param teamsSecretName string
@secure()
param teamsWebhookUrl string = ''
param smtpSecretName string
@secure()
param smtpPassword string = ''
param routesSecretName string = 'notify-routes'
@secure()
param notifyRoutes string = ''

var secretsUser = subscriptionResourceId('Microsoft.Authorization/roleDefinitions', '4633458b-17de-408a-b874-0445c86b69e6')
var secretsOfficer = subscriptionResourceId('Microsoft.Authorization/roleDefinitions', 'b86a8fe4-44ce-4948-aee5-eccb2c155cd7')

resource vault 'Microsoft.KeyVault/vaults@2023-07-01' = {
  // checkov:skip=CKV_AZURE_109:App Service resolves Key Vault references over the public endpoint when the app has no VNet integration; access is RBAC only.
  // checkov:skip=CKV_AZURE_189:Same as CKV_AZURE_109: public network access is needed for Key Vault references from a Flex Consumption app without a VNet.
  // checkov:skip=CKV_AZURE_110:Purge protection would block azd down --purge and a redeploy of the same environment for the retention period; the vault holds only a webhook URL and an optional SMTP password, both re-issuable at their source.
  // checkov:skip=CKV_AZURE_42:Soft delete is on (7 days); full recoverability needs purge protection, see CKV_AZURE_110.
  name: keyVaultName
  location: location
  tags: tags
  properties: {
    tenantId: subscription().tenantId
    sku: {
      family: 'A'
      name: 'standard'
    }
    enableRbacAuthorization: true
    enableSoftDelete: true
    softDeleteRetentionInDays: 7
    enablePurgeProtection: false
    publicNetworkAccess: 'Enabled'
    networkAcls: {
      defaultAction: 'Allow'
      bypass: 'AzureServices'
    }
  }
}

resource teamsSecret 'Microsoft.KeyVault/vaults/secrets@2023-07-01' = if (!empty(teamsWebhookUrl)) {
  // checkov:skip=CKV_AZURE_41:A webhook URL or SMTP password expires at its issuer; an expiry date here would silently stop notifications.
  // checkov:skip=CKV_AZURE_114:contentType is set; checkov does not read the body of a conditional (if) resource.
  parent: vault
  name: teamsSecretName
  properties: {
    value: teamsWebhookUrl
    contentType: 'text/uri'
  }
}

resource smtpSecret 'Microsoft.KeyVault/vaults/secrets@2023-07-01' = if (!empty(smtpPassword)) {
  // checkov:skip=CKV_AZURE_41:A webhook URL or SMTP password expires at its issuer; an expiry date here would silently stop notifications.
  // checkov:skip=CKV_AZURE_114:contentType is set; checkov does not read the body of a conditional (if) resource.
  parent: vault
  name: smtpSecretName
  properties: {
    value: smtpPassword
    contentType: 'text/plain'
  }
}

resource routesSecret 'Microsoft.KeyVault/vaults/secrets@2023-07-01' = if (!empty(notifyRoutes)) {
  // checkov:skip=CKV_AZURE_41:The routes hold Teams webhook URLs, which expire at their issuer; an expiry date here would silently stop notifications.
  // checkov:skip=CKV_AZURE_114:contentType is set; checkov does not read the body of a conditional (if) resource.
  parent: vault
  name: routesSecretName
  properties: {
    value: notifyRoutes
    contentType: 'text/plain'
  }
}

resource appSecretsUser 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(vault.id, appPrincipalId, secretsUser)
  scope: vault
  properties: {
    roleDefinitionId: secretsUser
    principalId: appPrincipalId
    principalType: 'ServicePrincipal'
  }
}

resource adminSecretsOfficer 'Microsoft.Authorization/roleAssignments@2022-04-01' = if (!empty(adminPrincipalId)) {
  name: guid(vault.id, adminPrincipalId, secretsOfficer)
  scope: vault
  properties: {
    roleDefinitionId: secretsOfficer
    principalId: adminPrincipalId
    principalType: adminPrincipalType
  }
}

output name string = vault.name
output vaultUri string = vault.properties.vaultUri
