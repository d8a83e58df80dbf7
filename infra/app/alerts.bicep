// Azure Monitor log alerts on the app's telemetry. The KQL lives in infra/app/kql/ (one place, shared
// with the workbook); it reads traces whose message starts with "remediation" and their custom
// dimensions scaleSetId, findingCode, actionCode, outcome, mode, correlationId, reasonCode.
param location string
param tags object
param appInsightsId string
param actionGroupName string
@description('E-mail receiving the alerts; empty: alerts fire without notification.')
param alertEmailAddress string = ''

resource actionGroup 'Microsoft.Insights/actionGroups@2023-01-01' = if (!empty(alertEmailAddress)) {
  name: actionGroupName
  location: 'global'
  tags: tags
  properties: {
    groupShortName: 'autoheal'
    enabled: true
    emailReceivers: [
      {
        name: 'operator'
        emailAddress: alertEmailAddress
        useCommonAlertSchema: true
      }
    ]
  }
}

var actionGroups = empty(alertEmailAddress) ? [] : [
  actionGroup.id
]

var rules = [
  {
    name: 'autoheal-remediation-failed'
    displayName: 'vmss-autoheal: remediation failed'
    description: 'A remediation action failed on a scale set (ledger outcome failed).'
    severity: 1
    query: loadTextContent('kql/failed-remediations.kql')
    dimension: 'scaleSetId'
  }
  {
    name: 'autoheal-repairs-suspended'
    displayName: 'vmss-autoheal: automatic repairs suspended'
    description: 'Automatic repairs were found suspended on a scale set.'
    severity: 2
    query: loadTextContent('kql/repairs-suspended.kql')
    dimension: 'scaleSetId'
  }
  {
    name: 'autoheal-function-failures'
    displayName: 'vmss-autoheal: function failures'
    description: 'A function invocation failed or raised an exception.'
    severity: 1
    query: loadTextContent('kql/function-failures.kql')
    dimension: 'functionName'
  }
]

resource alerts 'Microsoft.Insights/scheduledQueryRules@2023-12-01' = [for rule in rules: {
  name: rule.name
  location: location
  tags: tags
  properties: {
    displayName: rule.displayName
    description: rule.description
    severity: rule.severity
    enabled: true
    scopes: [
      appInsightsId
    ]
    evaluationFrequency: 'PT15M'
    windowSize: 'PT15M'
    criteria: {
      allOf: [
        {
          query: rule.query
          timeAggregation: 'Count'
          operator: 'GreaterThan'
          threshold: 0
          dimensions: [
            {
              name: rule.dimension
              operator: 'Include'
              values: [
                '*'
              ]
            }
          ]
          failingPeriods: {
            numberOfEvaluationPeriods: 1
            minFailingPeriodsToAlert: 1
          }
        }
      ]
    }
    autoMitigate: true
    actions: {
      actionGroups: actionGroups
    }
  }
}]
