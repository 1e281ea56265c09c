{{/*
The router's topology: the topology value plus one node per engine and vLLM server this
release deploys, at its Service's in-cluster address. The router and the workers read it
from the ConfigMap; tests/deploy checks it with megacity's own topology validation.
*/}}
{{- define "megacity.topology" -}}
{{- $topology := deepCopy (omit .Values.topology "nodes") -}}
{{- $nodes := list -}}
{{- range $name, $vllm := .Values.vllm.deployments -}}
{{- if $vllm.enabled -}}
{{- $service := printf "vllm-%s" $name -}}
{{- $node := dict
      "name" (include "megacity.nodeName" (list $ $service))
      "engine" "llm"
      "url" (printf "http://%s:%d" (include "megacity.serviceHost" (list $ $service)) (int $.Values.vllm.port))
      "models" $vllm.serves
      "region" $.Values.region
      "kind" $.Values.nodeKind
      "max_concurrency" (int $vllm.maxConcurrency)
      "weight" $vllm.weight -}}
{{- $nodes = append $nodes $node -}}
{{- end -}}
{{- end -}}
{{- range $kind, $engine := .Values.engines -}}
{{- if $engine.enabled -}}
{{- $node := dict
      "name" (include "megacity.nodeName" (list $ $kind))
      "engine" $kind
      "url" (printf "http://%s:%d" (include "megacity.serviceHost" (list $ $kind)) (int $engine.port))
      "models" $engine.serves
      "region" $.Values.region
      "kind" $.Values.nodeKind
      "max_concurrency" (int $engine.maxConcurrency) -}}
{{- $nodes = append $nodes $node -}}
{{- end -}}
{{- end -}}
{{- $_ := set $topology "nodes" (concat $nodes (.Values.topology.nodes | default list)) -}}
{{- toYaml $topology -}}
{{- end -}}
