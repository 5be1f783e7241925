{{- define "callq.name" -}}{{ .Chart.Name }}{{- end -}}
{{- define "callq.fullname" -}}{{ printf "%s-%s" .Release.Name .Chart.Name | trunc 63 | trimSuffix "-" }}{{- end -}}
{{- define "callq.labels" -}}
app.kubernetes.io/name: {{ include "callq.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end -}}
{{- define "callq.secretName" -}}{{ default (printf "%s-secrets" (include "callq.fullname" .)) .Values.existingSecret }}{{- end -}}
{{/* REDIS_URL: redisUrl, or redis+cluster://[auth@]node,node/ when redisCluster.enabled. */}}
{{- define "callq.redisUrl" -}}
{{- if .Values.redisCluster.enabled -}}
{{- if not .Values.redisCluster.nodes -}}{{ fail "redisCluster.enabled needs redisCluster.nodes (host:port of some of the cluster's nodes)" }}{{- end -}}
redis+cluster://{{ with .Values.redisCluster.auth }}{{ . }}@{{ end }}{{ join "," .Values.redisCluster.nodes }}/
{{- else -}}
{{ .Values.redisUrl }}
{{- end -}}
{{- end -}}
{{/* Environment shared by serve and worker. */}}
{{- define "callq.env" -}}
- name: REDIS_URL
  value: {{ include "callq.redisUrl" . | quote }}
- name: CALLQ_PUBLIC_URL
  value: {{ .Values.publicUrl | quote }}
- name: TWILIO_ACCOUNT_SID
  value: {{ .Values.twilio.accountSid | quote }}
- name: TWILIO_API_BASE
  value: {{ .Values.twilio.apiBase | quote }}
- name: CALLQ_LOG_JSON
  value: {{ .Values.logJson | quote }}
{{- if .Values.centreConfig }}
- name: CALLQ_CONFIG
  value: /etc/callq/callq.toml
{{- end }}
- name: TWILIO_AUTH_TOKEN
  valueFrom: { secretKeyRef: { name: {{ include "callq.secretName" . }}, key: TWILIO_AUTH_TOKEN } }
- name: TWILIO_API_KEY
  valueFrom: { secretKeyRef: { name: {{ include "callq.secretName" . }}, key: TWILIO_API_KEY, optional: true } }
- name: TWILIO_API_SECRET
  valueFrom: { secretKeyRef: { name: {{ include "callq.secretName" . }}, key: TWILIO_API_SECRET, optional: true } }
{{- end -}}
{{/* An alert's labels: its severity, its category (staffing or platform) and alerts.labels.
Takes (list .Values.alerts severity category). */}}
{{- define "callq.alertLabels" -}}
{{- $a := index . 0 -}}
severity: {{ index . 1 }}
category: {{ index . 2 }}
{{- with $a.labels }}
{{ toYaml . }}
{{- end }}
{{- end -}}
