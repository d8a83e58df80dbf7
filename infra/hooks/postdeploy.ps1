# azd postdeploy hook (Windows), step two of the deployment: see postdeploy.sh.
$ErrorActionPreference = 'Stop'

if ($env:AZURE_EVENT_SUBSCRIPTIONS_DEPLOYED -eq 'true') {
    Write-Host 'Event Grid subscriptions are deployed.'
    exit 0
}

azd env set AUTOHEAL_DEPLOY_EVENT_SUBSCRIPTIONS true
for ($attempt = 1; $attempt -le 3; $attempt++) {
    azd provision --no-prompt
    if ($LASTEXITCODE -eq 0) {
        Write-Host 'Event Grid subscriptions deployed.'
        exit 0
    }
    if ($attempt -lt 3) {
        Write-Warning "Provisioning failed (attempt $attempt of 3): the function may still be indexing; retrying in 60 s."
        Start-Sleep -Seconds 60
    }
}
Write-Error "Could not create the Event Grid subscriptions; run 'azd provision' again once the function app lists on_resource_event."
exit 1
