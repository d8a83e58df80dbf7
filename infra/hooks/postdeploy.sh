#!/bin/sh
# azd postdeploy hook, step two of the deployment: the Event Grid subscriptions deliver to the
# on_resource_event function, which must exist before they are created. Once the code is deployed,
# turn deployEventSubscriptions on and provision again (later `azd up` runs keep it on).
set -eu

if [ "${AZURE_EVENT_SUBSCRIPTIONS_DEPLOYED:-false}" = "true" ]; then
  echo "Event Grid subscriptions are deployed."
  exit 0
fi

azd env set AUTOHEAL_DEPLOY_EVENT_SUBSCRIPTIONS true
attempt=1
while :; do
  if azd provision --no-prompt; then
    echo "Event Grid subscriptions deployed."
    exit 0
  fi
  if [ "$attempt" -ge 3 ]; then
    echo "Could not create the Event Grid subscriptions; run 'azd provision' again once the function" >&2
    echo "app lists on_resource_event (az functionapp function list -g \$AZURE_RESOURCE_GROUP -n \$AZURE_FUNCTION_APP_NAME)." >&2
    exit 1
  fi
  echo "Provisioning failed (attempt $attempt of 3): the function may still be indexing; retrying in 60 s." >&2
  attempt=$((attempt + 1))
  sleep 60
done
