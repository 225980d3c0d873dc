#!/usr/bin/env bash
# Deploy an image to a stage: CloudFormation change set with the stage's parameter file.
# Usage: deployment/ci/deploy.sh <dev|prod> <image>
set -euo pipefail
stage="$1"
image="$2"
params="deployment/cloudformation/params-${stage}.json"
overrides=$(python3 -c 'import json,sys; print(" ".join(f"{k}={v}" for k, v in json.load(open(sys.argv[1])).items()))' "$params")
# shellcheck disable=SC2086 # the overrides are words on purpose
aws cloudformation deploy \
  --stack-name "studio-${stage}" \
  --template-file deployment/cloudformation/studio.yml \
  --capabilities CAPABILITY_IAM \
  --no-fail-on-empty-changeset \
  --parameter-overrides Stage="${stage}" Image="${image}" ${overrides}
aws ecs wait services-stable --cluster "$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["ClusterName"])' "$params")" --services "studio-${stage}"
