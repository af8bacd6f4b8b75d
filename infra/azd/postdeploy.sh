#!/bin/sh
# azd postdeploy hook: create the Event Grid subscription (manifests/ BlobCreated -> Functions blob trigger)
# once the Functions code is deployed. Bicep reads the blobs_extension key with listKeys; the key appears when
# the host has started with the blob extension, so wake the app and retry a few times.
set -eu

if [ "${BATCHRENDER_MANIFEST_EVENT_SUBSCRIPTION:-false}" = "true" ]; then
  echo "Event Grid subscription already provisioned."
  exit 0
fi

host="${AZURE_FUNCTION_APP_HOST:?run azd provision first}"
azd env set BATCHRENDER_ENABLE_EVENT_SUBSCRIPTION true

attempt=1
while [ "$attempt" -le 5 ]; do
  # Any request starts the host (and so creates its system keys); the answer itself does not matter.
  curl --silent --output /dev/null --max-time 60 "https://${host}/" || true
  if azd provision --no-prompt; then
    echo "Event Grid subscription created: manifests/*.json -> ${host}"
    exit 0
  fi
  echo "Provisioning the Event Grid subscription failed (attempt ${attempt}/5); retrying in 30 s..." >&2
  attempt=$((attempt + 1))
  sleep 30
done
echo "Could not create the Event Grid subscription; see docs/deploy-azure.md, 'Troubleshooting'." >&2
exit 1
