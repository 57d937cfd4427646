{{/*
Chart name, truncated to the 63 characters a label value allows.
*/}}
{{- define "fgm-operator.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
Full name of the release's objects: the release name when it already contains
the chart name, else `<release>-<chart>`.
*/}}
{{- define "fgm-operator.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{/*
Chart label value: name and version.
*/}}
{{- define "fgm-operator.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
Labels on every object of the release.
*/}}
{{- define "fgm-operator.labels" -}}
helm.sh/chart: {{ include "fgm-operator.chart" . }}
{{ include "fgm-operator.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: fine-grained-monitor
{{- end }}

{{/*
Labels that select the operator pods (never change them: the selector is immutable).
*/}}
{{- define "fgm-operator.selectorLabels" -}}
app.kubernetes.io/name: {{ include "fgm-operator.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: operator
{{- end }}

{{/*
Name of the operator's ServiceAccount.
*/}}
{{- define "fgm-operator.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "fgm-operator.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/*
The image reference: repository and tag (the chart's appVersion unless set).
*/}}
{{- define "fgm-operator.image" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}

{{/*
The image of the monitor pods: policy.defaultImage, else the operator's own.
*/}}
{{- define "fgm-operator.defaultImage" -}}
{{- default (include "fgm-operator.image" .) .Values.policy.defaultImage }}
{{- end }}

{{/*
Whether the operator runs with leader election: asked for, or more than one replica.
*/}}
{{- define "fgm-operator.leaderElection" -}}
{{- if or .Values.leaderElection.enabled (gt (int .Values.replicaCount) 1) }}true{{ end }}
{{- end }}
