{{/*
Names. The fullname is the release name when it already contains the chart
name (the catalog installs release "calico-pni"), else release-chart.
*/}}
{{- define "calico-pni.name" -}}
{{- .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "calico-pni.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 55 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 55 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{/* The uninstall hook's objects. */}}
{{- define "calico-pni.cleanupName" -}}
{{- printf "%s-cleanup" (include "calico-pni.fullname" .) -}}
{{- end -}}

{{- define "calico-pni.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
app.kubernetes.io/name: {{ include "calico-pni.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end -}}

{{/*
The daemon's pods. The component label keeps the uninstall hook's pod out
of the Deployment's selector: the hook waits for the Deployment's pods to
stop, and must not wait for itself.
*/}}
{{- define "calico-pni.selectorLabels" -}}
app.kubernetes.io/name: {{ include "calico-pni.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: daemon
{{- end -}}

{{/*
The image: registry/repository:tag. Rancher's system default registry, when
set, replaces image.registry, as it does for Rancher's own images, so that
an air-gapped cluster pulls <registry>/calico-pni/calico-pni.
*/}}
{{- define "calico-pni.image" -}}
{{- $registry := .Values.image.registry | default "" -}}
{{- with .Values.global -}}{{- with .cattle -}}{{- with .systemDefaultRegistry -}}{{- $registry = . -}}{{- end -}}{{- end -}}{{- end -}}
{{- $registry = trimSuffix "/" $registry -}}
{{- $repository := .Values.image.repository -}}
{{- if $registry -}}{{- $repository = printf "%s/%s" $registry $repository -}}{{- end -}}
{{- printf "%s:%s" $repository (.Values.image.tag | default .Chart.AppVersion) -}}
{{- end -}}

{{/* Usernames the label guard lets through: the daemon and the uninstall hook. */}}
{{- define "calico-pni.serviceAccountUser" -}}
{{- printf "system:serviceaccount:%s:%s" .Release.Namespace (include "calico-pni.fullname" .) -}}
{{- end -}}

{{- define "calico-pni.cleanupServiceAccountUser" -}}
{{- printf "system:serviceaccount:%s:%s" .Release.Namespace (include "calico-pni.cleanupName" .) -}}
{{- end -}}

{{/*
Pod and container security that passes the "restricted" Pod Security
Standard. The image runs as the distroless nonroot user.
*/}}
{{- define "calico-pni.podSecurityContext" -}}
runAsNonRoot: true
runAsUser: 65532
runAsGroup: 65532
seccompProfile:
  type: RuntimeDefault
{{- end -}}

{{- define "calico-pni.containerSecurityContext" -}}
allowPrivilegeEscalation: false
readOnlyRootFilesystem: true
runAsNonRoot: true
capabilities:
  drop: [ALL]
seccompProfile:
  type: RuntimeDefault
{{- end -}}

{{/*
The daemon's configuration file: .Values.config with the entries of
rancherMonitoring and rancherLogging first (_rancher.tpl), plus the release namespace
in exemptNamespaces unless an entry already names or matches it. Patterns
match as calico-pni matches them: the part before the '*' as a prefix and
the part after it as a suffix.
*/}}
{{- define "calico-pni.config" -}}
{{- $config := deepCopy .Values.config -}}
{{- include "calico-pni.rancherWorkloads" (list $config .Values) -}}
{{- $ns := .Release.Namespace -}}
{{- $exempt := $config.exemptNamespaces | default list -}}
{{- $covered := false -}}
{{- range $exempt -}}
{{- $p := toString . -}}
{{- if contains "*" $p -}}
{{- $parts := splitn "*" 2 $p -}}
{{- if and (hasPrefix $parts._0 $ns) (hasSuffix $parts._1 $ns) -}}
{{- $covered = true -}}
{{- end -}}
{{- else if eq $p $ns -}}
{{- $covered = true -}}
{{- end -}}
{{- end -}}
{{- if not $covered -}}
{{- $_ := set $config "exemptNamespaces" (append $exempt $ns) -}}
{{- end -}}
{{- /* The install form's project lists, comma-separated. */ -}}
{{- $projects := $config.projects | default dict -}}
{{- range $list := list "enforce" "stage" -}}
{{- $text := trim (toString (index ($.Values.rolloutProjects | default dict) $list | default "")) -}}
{{- if $text -}}
{{- $ids := list -}}
{{- range splitList "," $text -}}
{{- if trim . -}}
{{- $ids = append $ids (trim .) -}}
{{- end -}}
{{- end -}}
{{- $_ := set $projects $list $ids -}}
{{- end -}}
{{- end -}}
{{- $_ := set $config "projects" $projects -}}
{{- toYaml $config -}}
{{- end -}}
