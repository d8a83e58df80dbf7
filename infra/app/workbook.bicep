// Azure Monitor workbook over the app's telemetry: remediations over time by action code and outcome,
// held-back decisions, and scale sets with instance-level findings. KQL in infra/app/kql/.
param location string
param tags object
param appInsightsId string
param environmentName string

var queryItem = {
  version: 'KqlItem/1.0'
  size: 0
  queryType: 0
  resourceType: 'microsoft.insights/components'
}

var workbookContent = {
  version: 'Notebook/1.0'
  items: [
    {
      type: 1
      name: 'intro'
      content: {
        json: '## vmss-autoheal (${environmentName})\nRemediation records of the ledger as telemetry: traces whose message starts with "remediation".'
      }
    }
    {
      type: 3
      name: 'remediations-over-time'
      content: union(queryItem, {
        title: 'Remediations over time by action code and outcome'
        query: loadTextContent('kql/remediations-over-time.kql')
        visualization: 'timechart'
        timeContext: {
          durationMs: 604800000
        }
      })
    }
    {
      type: 3
      name: 'held-decisions'
      content: union(queryItem, {
        title: 'Held-back decisions'
        query: loadTextContent('kql/held-decisions.kql')
        visualization: 'table'
        timeContext: {
          durationMs: 604800000
        }
      })
    }
    {
      type: 3
      name: 'unhealthy-scale-sets'
      content: union(queryItem, {
        title: 'Scale sets with unhealthy, failed or stuck instances (last 30 minutes)'
        query: loadTextContent('kql/unhealthy-scale-sets.kql')
        visualization: 'table'
        timeContext: {
          durationMs: 3600000
        }
      })
    }
  ]
  isLocked: false
  fallbackResourceIds: [
    appInsightsId
  ]
}

resource workbook 'Microsoft.Insights/workbooks@2023-06-01' = {
  name: guid(resourceGroup().id, 'vmss-autoheal-workbook')
  location: location
  tags: tags
  kind: 'shared'
  properties: {
    displayName: 'vmss-autoheal (${environmentName})'
    category: 'workbook'
    sourceId: appInsightsId
    serializedData: string(workbookContent)
  }
}

output id string = workbook.id
