{{/* Name of the chart's objects. */}}
{{- define "covenant.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "covenant.labels" -}}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: covenant-operator
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end -}}

{{- define "covenant.selectorLabels" -}}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "covenant.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "covenant.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- required "serviceAccount.name is required when serviceAccount.create is false" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{- define "covenant.image" -}}
{{- if .Values.image.digest -}}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest -}}
{{- else -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) -}}
{{- end -}}
{{- end -}}

{{/*
The admission service's objects: their own app.kubernetes.io/name, so that the operator's
selectors (name and instance) never take in the admission pods, and the other way round.
*/}}
{{- define "covenant.admission.fullname" -}}
{{- printf "%s-admission" (include "covenant.fullname" . | trunc 53 | trimSuffix "-") -}}
{{- end -}}

{{- define "covenant.admission.selectorLabels" -}}
app.kubernetes.io/name: covenant-admission
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "covenant.admission.labels" -}}
{{ include "covenant.admission.selectorLabels" . }}
app.kubernetes.io/component: admission
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: covenant-operator
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end -}}
