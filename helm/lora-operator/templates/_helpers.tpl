{{/* Name of the chart, at most 63 characters as a label value allows. */}}
{{- define "lora-operator.name" -}}
{{- .Chart.Name | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Full name of the release's objects: the release name, plus the chart name unless it already contains it. */}}
{{- define "lora-operator.fullname" -}}
{{- if contains .Chart.Name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}

{{- define "lora-operator.selectorLabels" -}}
app.kubernetes.io/name: {{ include "lora-operator.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "lora-operator.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{ include "lora-operator.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/component: operator
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{- define "lora-operator.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "lora-operator.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- required "serviceAccount.name is required when serviceAccount.create is false" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/* repository[:tag][@digest] of an image value; the tag defaults to the chart's appVersion. */}}
{{- define "lora-operator.imageRef" -}}
{{- $image := .image }}
{{- $reference := printf "%s:%s" $image.repository (default .appVersion $image.tag) }}
{{- if $image.digest }}
{{- $reference = printf "%s@%s" $reference $image.digest }}
{{- end }}
{{- $reference }}
{{- end }}

{{/* The namespaces the operator watches, one per line; the release namespace when none is given. */}}
{{- define "lora-operator.watchNamespaces" -}}
{{- if .Values.watch.namespaces }}
{{- range (uniq .Values.watch.namespaces) }}
{{ . }}
{{- end }}
{{- else }}
{{ .Release.Namespace }}
{{- end }}
{{- end }}

{{/* Secrets the operator may read: only those the values name. */}}
{{- define "lora-operator.secretNames" -}}
{{- $names := list .Values.s3.credentialsSecret }}
{{- if .Values.notion.tokenSecret }}
{{- $names = append $names .Values.notion.tokenSecret }}
{{- end }}
{{- toJson (uniq $names) }}
{{- end }}

{{/* RBAC rules of the operator; the same in a Role and in the ClusterRole. */}}
{{- define "lora-operator.rules" -}}
- apiGroups: ["lora-operator.io"]
  resources: ["loratrainings", "notionsources"]
  verbs: ["get", "list", "watch", "patch"]
{{- if .Values.notion.tokenSecret }}
# A NotionSource turns database rows into new LoRATrainings.
- apiGroups: ["lora-operator.io"]
  resources: ["loratrainings"]
  verbs: ["create"]
{{- end }}
- apiGroups: ["lora-operator.io"]
  resources: ["loratrainings/status", "notionsources/status"]
  verbs: ["get", "patch"]
- apiGroups: ["batch"]
  resources: ["jobs"]
  verbs: ["get", "list", "watch", "create", "delete"]
- apiGroups: [""]
  resources: ["pods"]
  verbs: ["list", "watch"]
- apiGroups: [""]
  resources: ["configmaps"]
  verbs: ["create"]
- apiGroups: [""]
  resources: ["events"]
  verbs: ["create"]
- apiGroups: [""]
  resources: ["secrets"]
  resourceNames: {{ include "lora-operator.secretNames" . }}
  verbs: ["get"]
{{- end }}
