#!/usr/bin/env bash
# Copies the generated CRDs and RBAC rules into the Helm chart, so the chart ships
# exactly what api generates. Run by `make generate`; a test checks it.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
chart=$root/charts/covenant-operator
rm -f "$chart"/crds/*.yaml "$chart"/files/rbac/*.yaml
cp "$root"/crds/*.yaml "$chart/crds/"
cp "$root"/config/rbac/*.yaml "$chart/files/rbac/"
