{{/*
Rancher monitoring v2's and Rancher logging v2's service accounts come from
plain keys (rancherMonitoring.serviceAccounts, rancherLogging.serviceAccounts)
so that the install form sets them by a map path, never by a list index.
Each becomes the first entry of config.monitoring or config.logging, where
calico-pni's own defaults have it; an empty list adds no entry. Entries the
user lists in config are kept as they are. Called with (list $config .Values);
it changes $config in place.
*/}}
{{- define "calico-pni.rancherWorkloads" -}}
{{- $config := index . 0 -}}
{{- $values := index . 1 -}}
{{- range $family := list (list "monitoring" "cattle-monitoring-system" $values.rancherMonitoring) (list "logging" "cattle-logging-system" $values.rancherLogging) -}}
{{- $key := index $family 0 -}}
{{- $accounts := dig "serviceAccounts" list (index $family 2 | default dict) -}}
{{- if $accounts -}}
{{- $entry := dict "namespace" (index $family 1) "serviceAccounts" $accounts -}}
{{- $_ := set $config $key (prepend (get $config $key | default list) $entry) -}}
{{- end -}}
{{- end -}}
{{- end -}}
