// vmss-autoheal: one deployment per subscription (azd up, or az deployment sub create). For one deployment
// watching every subscription under a management group, main-mg.bicep deploys this file into a host
// subscription and adds the role and the Event Grid plumbing at management-group scope (infra/README.md).
// Creates the resource group and everything in it, the custom remediator role at subscription scope and,
// in a second step (deployEventSubscriptions=true, run by the azd postdeploy hook), the Event Grid
// subscriptions that deliver to the deployed function. See infra/README.md.
targetScope = 'subscription'

// ---------------------------------------------------------------------------------------------------
// Deployment
// ---------------------------------------------------------------------------------------------------

@minLength(1)
@maxLength(40)
@description('Name of the environment (azd env name); used in resource names and the azd-env-name tag.')
param environmentName string

@minLength(1)
@description('Azure region of the resource group and its resources.')
param location string

@description('Resource group to create; default rg-<environmentName>.')
param resourceGroupName string = ''

@description('Object id of the person deploying (azd sets it): gets Key Vault Secrets Officer to set the Teams webhook. Empty to skip.')
param principalId string = ''

@allowed([
  'User'
  'Group'
  'ServicePrincipal'
])
@description('Type of principalId.')
param principalType string = 'User'

@description('Assign the read-only observer role instead of the remediator role (only sensible with autohealMode=observe).')
param readOnlyRole bool = false

@description('Create the custom role and its assignment at this subscription. main-mg.bicep passes false: in management-group mode the role lives at the management group.')
param deploySubscriptionRole bool = true

@description('Create the Event Grid system topics (and, in the second step, their subscriptions) in this subscription. main-mg.bicep passes false and deploys them in every watched subscription itself.')
param deploySubscriptionEvents bool = true

@description('Second step: create the Event Grid subscriptions. Set after the code is deployed (the function must exist first); the azd postdeploy hook does it.')
param deployEventSubscriptions bool = false

@description('Name of an existing Microsoft.Resources.Subscriptions system topic to reuse (only one may exist per subscription). Empty: create one.')
param existingResourcesTopicName string = ''

@description('Resource group of existingResourcesTopicName.')
param existingResourcesTopicResourceGroup string = ''

@description('Principal id of the system-assigned identity of the reused resources topic; when set, it gets write access to the dead-letter container and dead-lettering is enabled. Empty: no dead-lettering on a reused topic.')
param existingResourcesTopicPrincipalId string = ''

@description('Also subscribe to Microsoft.ResourceNotifications.HealthResources (availability changes of VMs; preview).')
param enableHealthEvents bool = false

@description('Name of an existing Microsoft.ResourceNotifications.HealthResources system topic to reuse. Empty: create one.')
param existingHealthTopicName string = ''

@description('Resource group of existingHealthTopicName.')
param existingHealthTopicResourceGroup string = ''

@description('Principal id of the system-assigned identity of the reused health topic (enables dead-lettering). Empty: none.')
param existingHealthTopicPrincipalId string = ''

@description('Create Azure Communication Services e-mail (Azure-managed domain) and point AUTOHEAL_EMAIL_ENDPOINT/SENDER at it.')
param enableEmail bool = false

@description('Data location of the Communication Services resources.')
param emailDataLocation string = 'Europe'

@description('Create an Event Grid custom topic for outcome events (CloudEvents 1.0) with the app as EventGrid Data Sender, and point AUTOHEAL_EVENTS_ENDPOINT at it.')
param enableOutcomeEvents bool = false

@description('The Teams webhook URL was stored directly in Key Vault as secret teams-webhook-url (instead of passing autohealTeamsWebhookUrl).')
param teamsWebhookInKeyVault bool = false

@description('The SMTP password was stored directly in Key Vault as secret smtp-password (instead of passing autohealSmtpPassword).')
param smtpPasswordInKeyVault bool = false

@description('E-mail address receiving Azure Monitor alerts (failed remediations, suspended repairs, function failures). Empty: alerts fire without notification.')
param alertEmailAddress string = ''

@minValue(40)
@maxValue(1000)
@description('Flex Consumption: maximum instance count.')
param maximumInstanceCount int = 40

@allowed([
  2048
  4096
])
@description('Flex Consumption: instance memory (MB).')
param instanceMemoryMB int = 2048

@minValue(30)
@maxValue(730)
@description('Log Analytics retention (days).')
param logRetentionInDays int = 30

// ---------------------------------------------------------------------------------------------------
// App settings read by the code (autoheal/settings.py SETTINGS): one parameter each, with the code's
// default. tests/infra checks both directions. AUTOHEAL_ARM_ENDPOINT and AUTOHEAL_ARM_CA_BUNDLE are
// deliberately absent (local emulator only).
// ---------------------------------------------------------------------------------------------------

@description('AUTOHEAL_SCOPE: what the app watches: empty for this subscription, or a management group (/providers/Microsoft.Management/managementGroups/NAME or mg:NAME; set by main-mg.bicep).')
param autohealScope string = ''

@description('AUTOHEAL_EXCLUDE_SUBSCRIPTIONS: subscriptions under the management group to leave alone (comma-separated GUIDs).')
param autohealExcludeSubscriptions string = ''

@description('AUTOHEAL_SWEEP_QUEUE: Storage queue of the per-subscription sweep messages (management-group scope).')
param autohealSweepQueue string = 'autoheal-sweep'

@description('AUTOHEAL_GRACE_MARGIN: time past the repairs grace period before an unhealthy instance counts as not repaired (ISO 8601, PT0S-PT24H).')
param autohealGraceMargin string = 'PT15M'

@description('AUTOHEAL_STORM_THRESHOLD_PERCENT: share of unhealthy/unknown instances above which no instance action is taken (1-100).')
param autohealStormThresholdPercent string = '50'

@description('AUTOHEAL_STORM_MIN_INSTANCES: failed or unhealthy instances the storm brake needs as well as the percentage (1-1000).')
param autohealStormMinInstances string = '2'

@description('AUTOHEAL_LOOP_WINDOW: a replacement failing the same way within this time is a loop and held (ISO 8601, PT1H-P7D).')
param autohealLoopWindow string = 'P1D'

@description('AUTOHEAL_PROPOSE_RESILIENCY: propose enabling resilient create/delete (preview) where off (true/false).')
param autohealProposeResiliency string = 'false'

@description('AUTOHEAL_DELETE_STUCK_AFTER: how long a delete may take before it counts as stuck (ISO 8601, PT1M-P7D).')
param autohealDeleteStuckAfter string = 'PT30M'

@description('AUTOHEAL_TARGET_GRACE_PERIOD: repairs grace period scale sets should have; empty to not check (ISO 8601, PT10M-PT90M).')
param autohealTargetGracePeriod string = ''

@description('AUTOHEAL_REPAIR_GRACE_PERIOD: gracePeriod written when automatic repairs are enabled (ISO 8601, PT10M-PT90M).')
param autohealRepairGracePeriod string = 'PT30M'

@allowed([
  'Replace'
  'Reimage'
  'Restart'
])
@description('AUTOHEAL_REPAIR_ACTION: repairAction written when automatic repairs are enabled.')
param autohealRepairAction string = 'Replace'

@allowed([
  'observe'
  'remediate'
])
@description('AUTOHEAL_MODE: observe (plan, record, notify, change nothing) or remediate (act within the guardrails).')
param autohealMode string = 'observe'

@description('AUTOHEAL_ALLOWED_ACTIONS: * or a comma-separated list of action codes the tool may carry out.')
param autohealAllowedActions string = '*'

@description('AUTOHEAL_OPT_OUT_TAG: scale sets with this tag (name=value or name) are never touched.')
param autohealOptOutTag string = 'autoheal=off'

@description('AUTOHEAL_OPT_IN_TAG: if set, only scale sets with this tag are acted on.')
param autohealOptInTag string = ''

@description('AUTOHEAL_INCLUDE_RESOURCE_GROUPS: if set, only scale sets in these resource groups (comma-separated) are acted on.')
param autohealIncludeResourceGroups string = ''

@description('AUTOHEAL_EXCLUDE_RESOURCE_GROUPS: scale sets in these resource groups (comma-separated) are never acted on.')
param autohealExcludeResourceGroups string = ''

@description('AUTOHEAL_ALLOWED_OWNERS: owners (aks, service-fabric, batch, databricks, avd, managed-by, ...) whose scale sets may be acted on; empty = hands off.')
param autohealAllowedOwners string = ''

@description('AUTOHEAL_COMPUTE_READ_SHARE: share (%) of each Compute throttling bucket the tool may use (1-100).')
param autohealComputeReadShare string = '25'

@description('AUTOHEAL_SWEEP_SLICE: longest a timer sweep works before the next tick continues (ISO 8601, PT30S-PT25M).')
param autohealSweepSlice string = 'PT10M'

@description('AUTOHEAL_INVENTORY: where a sweep lists the scale sets: resource-graph (no Compute tokens) or compute.')
param autohealInventory string = 'resource-graph'

@description('AUTOHEAL_SUSPECT_PRESCREEN: get-list (re-read suspects through Resource Graph GET/LIST before Compute) or off.')
param autohealSuspectPrescreen string = 'get-list'

@description('AUTOHEAL_MAX_DISRUPTION_PERCENT: at most max(1, this % of capacity) instances in flight per scale set (1-100).')
param autohealMaxDisruptionPercent string = '10'

@description('AUTOHEAL_CAPACITY_FLOOR_PERCENT: a replacement never takes capacity below this % (0-100).')
param autohealCapacityFloorPercent string = '50'

@description('AUTOHEAL_COOLDOWN: quiet time per scale set after an action (ISO 8601, PT0S-P1D).')
param autohealCooldown string = 'PT10M'

@description('AUTOHEAL_MAX_ATTEMPTS: attempts per action target before giving up (1-20).')
param autohealMaxAttempts string = '5'

@description('AUTOHEAL_BACKOFF_BASE: retry k waits base x 2^(k-1) (ISO 8601, PT0S-P1D).')
param autohealBackoffBase string = 'PT10M'

@description('AUTOHEAL_MAX_ACTIONS_PER_SWEEP: cap on actions per sweep across the subscription (0-1000).')
param autohealMaxActionsPerSweep string = '10'

@description('AUTOHEAL_MAX_RESUMES_PER_DAY: resumes of suspended automatic repairs per scale set per 24 hours (0-24).')
param autohealMaxResumesPerDay string = '2'

@description('AUTOHEAL_ACTIVITY_LOG_LOOKBACK: how far back the Activity Log is read to learn who suspended automatic repairs (ISO 8601, P1D-P90D).')
param autohealActivityLogLookback string = 'P90D'

@description('AUTOHEAL_ACTION_LEASE: how long a worker owns an action it started (ISO 8601, PT1M-PT6H).')
param autohealActionLease string = 'PT30M'

@description('AUTOHEAL_LRO_TIMEOUT: longest wait for one Azure long-running operation (ISO 8601, PT10S-PT2H).')
param autohealLroTimeout string = 'PT20M'

@description('AUTOHEAL_LRO_POLL_SECONDS: polling interval for long-running operations without Retry-After (0-300).')
param autohealLroPollSeconds string = '15'

@description('AUTOHEAL_LEDGER_TABLE: ledger table in the function storage account (created here).')
param autohealLedgerTable string = 'autohealledger'

@description('AUTOHEAL_SWEEP_SCHEDULE: NCRONTAB schedule (six fields) of the sweep.')
param autohealSweepSchedule string = '0 */15 * * * *'

@description('AUTOHEAL_SWEEP_CONCURRENCY: scale sets evaluated in parallel by a sweep (1-64).')
param autohealSweepConcurrency string = '8'

@description('AUTOHEAL_ARM_READS_RESERVE: remaining ARM reads below which the sweep slows down (0-12000).')
param autohealArmReadsReserve string = '200'

@description('AUTOHEAL_EVENT_COALESCE_WINDOW: events for one scale set within this window cause one evaluation (ISO 8601, PT0S-PT1H).')
param autohealEventCoalesceWindow string = 'PT1M'

@secure()
@description('AUTOHEAL_TEAMS_WEBHOOK_URL: Teams Workflows webhook URL; stored in Key Vault (secret teams-webhook-url), the app setting is a Key Vault reference. Empty: Teams off (unless teamsWebhookInKeyVault).')
param autohealTeamsWebhookUrl string = ''

@allowed([
  'info'
  'warning'
  'error'
])
@description('AUTOHEAL_TEAMS_MIN_SEVERITY: least severe finding posted to Teams.')
param autohealTeamsMinSeverity string = 'warning'

@description('AUTOHEAL_EMAIL_ENDPOINT: Communication Services endpoint; with enableEmail the created one is used.')
param autohealEmailEndpoint string = ''

@description('AUTOHEAL_EMAIL_SENDER: sender address; with enableEmail DoNotReply@<Azure-managed domain> is used.')
param autohealEmailSender string = ''

@description('AUTOHEAL_EMAIL_RECIPIENTS: comma-separated e-mail addresses receiving notifications.')
param autohealEmailRecipients string = ''

@allowed([
  'info'
  'warning'
  'error'
])
@description('AUTOHEAL_EMAIL_MIN_SEVERITY: least severe finding sent by e-mail.')
param autohealEmailMinSeverity string = 'error'

@description('AUTOHEAL_SMTP_HOST: SMTP server, used when no Communication Services endpoint is set.')
param autohealSmtpHost string = ''

@description('AUTOHEAL_SMTP_PORT: SMTP port (1-65535).')
param autohealSmtpPort string = '587'

@description('AUTOHEAL_SMTP_STARTTLS: use STARTTLS with SMTP (true or false).')
param autohealSmtpStarttls string = 'true'

@description('AUTOHEAL_SMTP_USERNAME: SMTP user name.')
param autohealSmtpUsername string = ''

@secure()
@description('AUTOHEAL_SMTP_PASSWORD: SMTP password; stored in Key Vault (secret smtp-password), the app setting is a Key Vault reference.')
param autohealSmtpPassword string = ''

@secure()
@description('AUTOHEAL_NOTIFY_ROUTES: per-subscription channels (SUBSCRIPTION=TARGET[,TARGET];...); stored in Key Vault (secret notify-routes), the app setting is a Key Vault reference.')
param autohealNotifyRoutes string = ''

@allowed([
  'digest'
  'each'
])
@description('AUTOHEAL_NOTIFY_STYLE: digest (one message per sweep or event) or each (one message per change).')
param autohealNotifyStyle string = 'digest'

@description('AUTOHEAL_NOTIFY_DEDUPE_WINDOW: the same finding is not re-sent within this window unless it changes (ISO 8601, PT0S-P7D).')
param autohealNotifyDedupeWindow string = 'PT6H'

@description('AUTOHEAL_PORTAL_URL: Azure portal base URL for links (sovereign clouds differ).')
param autohealPortalUrl string = 'https://portal.azure.com'

@description('AUTOHEAL_EVENTS_ENDPOINT: Event Grid topic endpoint for outcome events; with enableOutcomeEvents the created topic is used. Empty: no events.')
param autohealEventsEndpoint string = ''

// ---------------------------------------------------------------------------------------------------
// Names
// ---------------------------------------------------------------------------------------------------

var resourceToken = toLower(uniqueString(subscription().id, environmentName, location))
var tags = {
  'azd-env-name': environmentName
  application: 'vmss-autoheal'
}
var rgName = empty(resourceGroupName) ? 'rg-${environmentName}' : resourceGroupName
var functionAppName = 'func-autoheal-${resourceToken}'
var deploymentContainerName = 'app-package-${resourceToken}'
var deadLetterContainerName = 'eventgrid-deadletter'
var teamsSecretName = 'teams-webhook-url'
var smtpSecretName = 'smtp-password'
var routesSecretName = 'notify-routes'
var existingResourcesTopicPrincipals = empty(existingResourcesTopicPrincipalId) ? [] : [
  existingResourcesTopicPrincipalId
]
var existingHealthTopicPrincipals = empty(existingHealthTopicPrincipalId) ? [] : [
  existingHealthTopicPrincipalId
]

// The Event Grid contract with autoheal/events.py (event types, filters, function name) lives in
// app/events.bicep, the one module both modes deploy per subscription.

// ---------------------------------------------------------------------------------------------------
// Resources
// ---------------------------------------------------------------------------------------------------

resource rg 'Microsoft.Resources/resourceGroups@2024-03-01' = {
  name: rgName
  location: location
  tags: tags
}

module identity 'app/identity.bicep' = {
  name: 'identity'
  scope: rg
  params: {
    location: location
    tags: tags
    appIdentityName: 'id-autoheal-${resourceToken}'
    eventGridIdentityName: 'id-autoheal-eg-${resourceToken}'
  }
}

module monitoring 'app/monitoring.bicep' = {
  name: 'monitoring'
  scope: rg
  params: {
    location: location
    tags: tags
    logAnalyticsName: 'log-autoheal-${resourceToken}'
    appInsightsName: 'appi-autoheal-${resourceToken}'
    retentionInDays: logRetentionInDays
    publisherPrincipalId: identity.outputs.appPrincipalId
  }
}

module storage 'app/storage.bicep' = {
  name: 'storage'
  scope: rg
  params: {
    location: location
    tags: tags
    storageAccountName: 'stautoheal${resourceToken}'
    deploymentContainerName: deploymentContainerName
    deadLetterContainerName: deadLetterContainerName
    ledgerTableName: autohealLedgerTable
    appPrincipalId: identity.outputs.appPrincipalId
    eventGridPrincipalId: identity.outputs.eventGridPrincipalId
    existingTopicPrincipalIds: union(existingResourcesTopicPrincipals, existingHealthTopicPrincipals)
    queueAccess: !empty(autohealScope)
  }
}

module keyVault 'app/keyvault.bicep' = {
  name: 'keyvault'
  scope: rg
  params: {
    location: location
    tags: tags
    keyVaultName: 'kv-autoheal-${take(resourceToken, 11)}'
    appPrincipalId: identity.outputs.appPrincipalId
    adminPrincipalId: principalId
    adminPrincipalType: principalType
    teamsSecretName: teamsSecretName
    teamsWebhookUrl: autohealTeamsWebhookUrl
    smtpSecretName: smtpSecretName
    smtpPassword: autohealSmtpPassword
    routesSecretName: routesSecretName
    notifyRoutes: autohealNotifyRoutes
  }
}

module email 'app/email.bicep' = if (enableEmail) {
  name: 'email'
  scope: rg
  params: {
    tags: tags
    emailServiceName: 'ecs-autoheal-${resourceToken}'
    communicationServiceName: 'acs-autoheal-${resourceToken}'
    dataLocation: emailDataLocation
    senderPrincipalId: identity.outputs.appPrincipalId
  }
}

module outcomeEvents 'app/outcome-events.bicep' = if (enableOutcomeEvents) {
  name: 'outcome-events'
  scope: rg
  params: {
    location: location
    tags: tags
    topicName: 'evgt-autoheal-${resourceToken}'
    senderPrincipalId: identity.outputs.appPrincipalId
  }
}

var teamsWebhookSetting = (!empty(autohealTeamsWebhookUrl) || teamsWebhookInKeyVault) ? '@Microsoft.KeyVault(SecretUri=${keyVault.outputs.vaultUri}secrets/${teamsSecretName}/)' : ''
var notifyRoutesSetting = !empty(autohealNotifyRoutes) ? '@Microsoft.KeyVault(SecretUri=${keyVault.outputs.vaultUri}secrets/${routesSecretName}/)' : ''
var smtpPasswordSetting = (!empty(autohealSmtpPassword) || smtpPasswordInKeyVault) ? '@Microsoft.KeyVault(SecretUri=${keyVault.outputs.vaultUri}secrets/${smtpSecretName}/)' : ''

// Every AUTOHEAL_* app setting (the platform ones are added in app/function.bicep).
var autohealSettings = {
  AUTOHEAL_SCOPE: autohealScope
  AUTOHEAL_EXCLUDE_SUBSCRIPTIONS: autohealExcludeSubscriptions
  AUTOHEAL_SWEEP_QUEUE: autohealSweepQueue
  AUTOHEAL_GRACE_MARGIN: autohealGraceMargin
  AUTOHEAL_STORM_THRESHOLD_PERCENT: autohealStormThresholdPercent
  AUTOHEAL_STORM_MIN_INSTANCES: autohealStormMinInstances
  AUTOHEAL_LOOP_WINDOW: autohealLoopWindow
  AUTOHEAL_PROPOSE_RESILIENCY: autohealProposeResiliency
  AUTOHEAL_DELETE_STUCK_AFTER: autohealDeleteStuckAfter
  AUTOHEAL_TARGET_GRACE_PERIOD: autohealTargetGracePeriod
  AUTOHEAL_REPAIR_GRACE_PERIOD: autohealRepairGracePeriod
  AUTOHEAL_REPAIR_ACTION: autohealRepairAction
  AUTOHEAL_MODE: autohealMode
  AUTOHEAL_ALLOWED_ACTIONS: autohealAllowedActions
  AUTOHEAL_OPT_OUT_TAG: autohealOptOutTag
  AUTOHEAL_OPT_IN_TAG: autohealOptInTag
  AUTOHEAL_INCLUDE_RESOURCE_GROUPS: autohealIncludeResourceGroups
  AUTOHEAL_EXCLUDE_RESOURCE_GROUPS: autohealExcludeResourceGroups
  AUTOHEAL_ALLOWED_OWNERS: autohealAllowedOwners
  AUTOHEAL_COMPUTE_READ_SHARE: autohealComputeReadShare
  AUTOHEAL_SWEEP_SLICE: autohealSweepSlice
  AUTOHEAL_INVENTORY: autohealInventory
  AUTOHEAL_SUSPECT_PRESCREEN: autohealSuspectPrescreen
  AUTOHEAL_MAX_DISRUPTION_PERCENT: autohealMaxDisruptionPercent
  AUTOHEAL_CAPACITY_FLOOR_PERCENT: autohealCapacityFloorPercent
  AUTOHEAL_COOLDOWN: autohealCooldown
  AUTOHEAL_MAX_ATTEMPTS: autohealMaxAttempts
  AUTOHEAL_BACKOFF_BASE: autohealBackoffBase
  AUTOHEAL_MAX_ACTIONS_PER_SWEEP: autohealMaxActionsPerSweep
  AUTOHEAL_MAX_RESUMES_PER_DAY: autohealMaxResumesPerDay
  AUTOHEAL_ACTIVITY_LOG_LOOKBACK: autohealActivityLogLookback
  AUTOHEAL_ACTION_LEASE: autohealActionLease
  AUTOHEAL_LRO_TIMEOUT: autohealLroTimeout
  AUTOHEAL_LRO_POLL_SECONDS: autohealLroPollSeconds
  AUTOHEAL_LEDGER_TABLE: autohealLedgerTable
  AUTOHEAL_SWEEP_SCHEDULE: autohealSweepSchedule
  AUTOHEAL_SWEEP_CONCURRENCY: autohealSweepConcurrency
  AUTOHEAL_ARM_READS_RESERVE: autohealArmReadsReserve
  AUTOHEAL_EVENT_COALESCE_WINDOW: autohealEventCoalesceWindow
  AUTOHEAL_TEAMS_WEBHOOK_URL: teamsWebhookSetting
  AUTOHEAL_TEAMS_MIN_SEVERITY: autohealTeamsMinSeverity
  AUTOHEAL_EMAIL_ENDPOINT: (enableEmail && empty(autohealEmailEndpoint)) ? email.outputs.endpoint : autohealEmailEndpoint
  AUTOHEAL_EMAIL_SENDER: (enableEmail && empty(autohealEmailSender)) ? email.outputs.senderAddress : autohealEmailSender
  AUTOHEAL_EMAIL_RECIPIENTS: autohealEmailRecipients
  AUTOHEAL_EMAIL_MIN_SEVERITY: autohealEmailMinSeverity
  AUTOHEAL_SMTP_HOST: autohealSmtpHost
  AUTOHEAL_SMTP_PORT: autohealSmtpPort
  AUTOHEAL_SMTP_STARTTLS: autohealSmtpStarttls
  AUTOHEAL_SMTP_USERNAME: autohealSmtpUsername
  AUTOHEAL_SMTP_PASSWORD: smtpPasswordSetting
  AUTOHEAL_NOTIFY_ROUTES: notifyRoutesSetting
  AUTOHEAL_NOTIFY_STYLE: autohealNotifyStyle
  AUTOHEAL_NOTIFY_DEDUPE_WINDOW: autohealNotifyDedupeWindow
  AUTOHEAL_PORTAL_URL: autohealPortalUrl
  AUTOHEAL_EVENTS_ENDPOINT: (enableOutcomeEvents && empty(autohealEventsEndpoint)) ? outcomeEvents.outputs.endpoint : autohealEventsEndpoint
  // not AUTOHEAL_*, but the code's setting: the portal links carry the directory the app runs in
  AZURE_TENANT_ID: tenant().tenantId
}

module functionApp 'app/function.bicep' = {
  name: 'function'
  scope: rg
  params: {
    location: location
    tags: tags
    planName: 'plan-autoheal-${resourceToken}'
    functionAppName: functionAppName
    identityId: identity.outputs.appIdentityId
    identityClientId: identity.outputs.appClientId
    storageAccountName: storage.outputs.name
    blobEndpoint: storage.outputs.blobEndpoint
    tableEndpoint: storage.outputs.tableEndpoint
    deploymentContainerName: deploymentContainerName
    appInsightsConnectionString: monitoring.outputs.appInsightsConnectionString
    maximumInstanceCount: maximumInstanceCount
    instanceMemoryMB: instanceMemoryMB
    autohealSettings: autohealSettings
  }
}

module remediatorRole 'app/remediator-role.bicep' = if (deploySubscriptionRole) {
  name: 'remediator-role'
  params: {
    principalId: identity.outputs.appPrincipalId
    readOnly: readOnlyRole
  }
}

module alerts 'app/alerts.bicep' = {
  name: 'alerts'
  scope: rg
  params: {
    location: location
    tags: tags
    appInsightsId: monitoring.outputs.appInsightsId
    actionGroupName: 'ag-autoheal-${resourceToken}'
    alertEmailAddress: alertEmailAddress
  }
}

module workbook 'app/workbook.bicep' = {
  name: 'workbook'
  scope: rg
  params: {
    location: location
    tags: tags
    appInsightsId: monitoring.outputs.appInsightsId
    environmentName: environmentName
  }
}

// Event Grid (app/events.bicep, shared with main-mg.bicep): system topics now (they need no function),
// subscriptions in the second step.
var resourcesTopicRg = empty(existingResourcesTopicName) ? rg.name : existingResourcesTopicResourceGroup
var healthTopicRg = empty(existingHealthTopicName) ? rg.name : existingHealthTopicResourceGroup

module events 'app/events.bicep' = if (deploySubscriptionEvents) {
  name: 'eventgrid'
  scope: rg
  params: {
    tags: tags
    createResourcesTopic: empty(existingResourcesTopicName)
    resourcesTopicName: empty(existingResourcesTopicName) ? 'evgt-autoheal-resources-${resourceToken}' : existingResourcesTopicName
    resourcesTopicResourceGroup: resourcesTopicRg
    resourcesDeadLetterIdentity: empty(existingResourcesTopicName) ? 'UserAssigned' : (empty(existingResourcesTopicPrincipalId) ? 'None' : 'SystemAssigned')
    enableHealthEvents: enableHealthEvents
    createHealthTopic: empty(existingHealthTopicName)
    healthTopicName: empty(existingHealthTopicName) ? 'evgt-autoheal-health-${resourceToken}' : existingHealthTopicName
    healthTopicResourceGroup: healthTopicRg
    healthDeadLetterIdentity: empty(existingHealthTopicName) ? 'UserAssigned' : (empty(existingHealthTopicPrincipalId) ? 'None' : 'SystemAssigned')
    eventGridIdentityId: identity.outputs.eventGridIdentityId
    deployEventSubscriptions: deployEventSubscriptions
    functionAppId: functionApp.outputs.id
    deadLetterStorageId: storage.outputs.id
    deadLetterContainerName: deadLetterContainerName
  }
}

// ---------------------------------------------------------------------------------------------------
// Outputs (azd stores them in the environment; the postdeploy hook reads a few)
// ---------------------------------------------------------------------------------------------------

output AZURE_LOCATION string = location
output AZURE_TENANT_ID string = tenant().tenantId
output AZURE_SUBSCRIPTION_ID string = subscription().subscriptionId
output AZURE_RESOURCE_GROUP string = rg.name
output AZURE_FUNCTION_APP_NAME string = functionApp.outputs.name
output AZURE_FUNCTION_URI string = functionApp.outputs.uri
output AZURE_KEY_VAULT_NAME string = keyVault.outputs.name
output AZURE_STORAGE_ACCOUNT_NAME string = storage.outputs.name
output AZURE_APP_IDENTITY_CLIENT_ID string = identity.outputs.appClientId
output AZURE_REMEDIATOR_ROLE_NAME string = deploySubscriptionRole ? remediatorRole.outputs.roleName : ''
// For main-mg.bicep: what the per-subscription event subscriptions and the management-group role need.
output AZURE_FUNCTION_APP_ID string = functionApp.outputs.id
output AZURE_APP_PRINCIPAL_ID string = identity.outputs.appPrincipalId
output AZURE_STORAGE_ACCOUNT_ID string = storage.outputs.id
output AZURE_EVENTGRID_IDENTITY_ID string = identity.outputs.eventGridIdentityId
output AUTOHEAL_OUTCOME_EVENTS_ENDPOINT string = enableOutcomeEvents ? outcomeEvents.outputs.endpoint : autohealEventsEndpoint
output AZURE_RESOURCES_TOPIC_NAME string = deploySubscriptionEvents ? events.outputs.resourcesTopicName : ''
output AZURE_EVENT_SUBSCRIPTIONS_DEPLOYED bool = deployEventSubscriptions
output APPLICATIONINSIGHTS_NAME string = monitoring.outputs.appInsightsName
output AZURE_WORKBOOK_ID string = workbook.outputs.id
