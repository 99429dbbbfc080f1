#!/usr/bin/env bash
# Builds the pinned test binaries from their Go module sources into bin/.
# Each tool is rebuilt only when its recipe (go.mod, go.sum, this script) changes,
# so a second run takes seconds. Usage: tools/build.sh [tool...]
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(dirname "$here")
bin=${COVENANT_BIN:-$root/bin}
stamps=$bin/.stamps
mkdir -p "$bin" "$stamps"
# shellcheck source=versions.env
source "$here/versions.env"

k8s_ldflags="-s -w -X k8s.io/component-base/version.gitVersion=$KUBERNETES_VERSION \
-X k8s.io/component-base/version.gitMajor=$(echo "$KUBERNETES_VERSION" | cut -d. -f1 | tr -d v) \
-X k8s.io/component-base/version.gitMinor=$(echo "$KUBERNETES_VERSION" | cut -d. -f2) \
-X k8s.io/component-base/version.gitTreeState=clean"

# Helm's default Kubernetes version (for `helm template` and lint) is that of its client-go.
helm_client_go=$(grep -E '^\s+k8s.io/client-go ' "$here/helm/go.mod" | awk '{print $2}')
helm_k8s_minor=$(echo "$helm_client_go" | cut -d. -f2)
helm_k8s=""
for pkg in pkg/chartutil pkg/lint/rules; do
  helm_k8s="$helm_k8s -X helm.sh/helm/v3/$pkg.k8sVersionMajor=1 -X helm.sh/helm/v3/$pkg.k8sVersionMinor=$helm_k8s_minor"
done

# tool -> "module dir|ldflags|binary=package ..."
recipe() {
  case $1 in
  kubernetes) echo "kubernetes|$k8s_ldflags|kube-apiserver=k8s.io/kubernetes/cmd/kube-apiserver kube-controller-manager=k8s.io/kubernetes/cmd/kube-controller-manager kube-scheduler=k8s.io/kubernetes/cmd/kube-scheduler kubectl=k8s.io/kubernetes/cmd/kubectl kubelet=k8s.io/kubernetes/cmd/kubelet" ;;
  etcd) echo "etcd|-s -w|etcd=go.etcd.io/etcd/server/v3" ;;
  nats) echo "nats|-s -w|nats-server=github.com/nats-io/nats-server/v2" ;;
  helm) echo "helm|-s -w -X helm.sh/helm/v3/internal/version.version=$HELM_VERSION $helm_k8s|helm=helm.sh/helm/v3/cmd/helm" ;;
  kwok) echo "kwok|-s -w -X sigs.k8s.io/kwok/pkg/consts.Version=$KWOK_VERSION|kwok=sigs.k8s.io/kwok/cmd/kwok" ;;
  *) echo "unknown tool: $1" >&2; return 1 ;;
  esac
}

build_one() {
  local tool=$1 spec dir ldflags bins key stamp
  spec=$(recipe "$tool")
  dir=${spec%%|*}; spec=${spec#*|}
  ldflags=${spec%%|*}; bins=${spec#*|}
  key=$(cat "$here/$dir/go.mod" "$here/$dir/go.sum" "$here/versions.env" <(recipe "$tool") | sha256sum | cut -c1-16)
  stamp=$stamps/$tool
  local all_present=1 pair
  for pair in $bins; do [ -x "$bin/${pair%%=*}" ] || all_present=0; done
  if [ "$all_present" = 1 ] && [ "$(cat "$stamp" 2>/dev/null)" = "$key" ]; then
    echo "tools: $tool up to date"
    return
  fi
  local start=$SECONDS pkgs=()
  for pair in $bins; do pkgs+=("${pair#*=}"); done
  echo "tools: building $tool (${bins//=*([^ ])/})"
  (cd "$here/$dir" && GOFLAGS="-mod=readonly -buildvcs=false" go build -trimpath -ldflags "$ldflags" -o "$bin/" "${pkgs[@]}")
  # go build names a binary after the last element of its package path; rename where ours differs.
  for pair in $bins; do
    local name=${pair%%=*} pkg=${pair#*=} built
    built=$(basename "$pkg")
    case $built in v[0-9]*) built=$(basename "$(dirname "$pkg")") ;; esac
    [ "$built" = "$name" ] || mv -f "$bin/$built" "$bin/$name"
  done
  echo "$key" >"$stamp"
  echo "tools: built $tool in $((SECONDS - start)) s"
}

shopt -s extglob
tools=("$@")
[ ${#tools[@]} -gt 0 ] || tools=(kubernetes etcd nats helm kwok)
for t in "${tools[@]}"; do build_one "$t"; done
