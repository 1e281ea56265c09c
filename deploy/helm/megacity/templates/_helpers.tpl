{{/* Names, labels, images and the pieces every MegaCity pod shares. */}}

{{- define "megacity.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "megacity.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- $name := default .Chart.Name .Values.nameOverride -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{/* The labels selectors use: chart name, release, component. Call with (list $ "router"). */}}
{{- define "megacity.selectorLabels" -}}
{{- $root := index . 0 -}}
app.kubernetes.io/name: {{ include "megacity.name" $root }}
app.kubernetes.io/instance: {{ $root.Release.Name }}
app.kubernetes.io/component: {{ index . 1 }}
{{- end -}}

{{- define "megacity.labels" -}}
{{- $root := index . 0 -}}
{{ include "megacity.selectorLabels" . }}
helm.sh/chart: {{ printf "%s-%s" $root.Chart.Name $root.Chart.Version | replace "+" "_" }}
app.kubernetes.io/version: {{ $root.Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ $root.Release.Service }}
app.kubernetes.io/part-of: megacity
megacity.ai/region: {{ $root.Values.region }}
{{- end -}}

{{/* A MegaCity image: (list $ "megacity-router"). */}}
{{- define "megacity.image" -}}
{{- $root := index . 0 -}}
{{- printf "%s/%s:%s" $root.Values.image.registry (index . 1) (default $root.Chart.AppVersion $root.Values.image.tag) -}}
{{- end -}}

{{- define "megacity.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "megacity.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{- define "megacity.secretName" -}}
{{- default (printf "%s-secrets" (include "megacity.fullname" .)) .Values.secrets.name -}}
{{- end -}}

{{/* The in-cluster address of a Service of this release: (list $ "speech"). */}}
{{- define "megacity.serviceHost" -}}
{{- $root := index . 0 -}}
{{- printf "%s-%s.%s.svc.cluster.local" (include "megacity.fullname" $root) (index . 1) $root.Release.Namespace -}}
{{- end -}}

{{/* The topology node name of one of this release's engines or vLLM servers. */}}
{{- define "megacity.nodeName" -}}
{{- $root := index . 0 -}}
{{- printf "%s-%s" $root.Values.region (index . 1) -}}
{{- end -}}

{{- define "megacity.podSecurityContext" -}}
{{ toYaml .Values.podSecurityContext }}
{{- end -}}

{{- define "megacity.securityContext" -}}
{{ toYaml .Values.securityContext }}
{{- end -}}

{{- define "megacity.imagePullSecrets" -}}
{{- with .Values.image.pullSecrets }}
imagePullSecrets:
{{ toYaml . }}
{{- end }}
{{- end -}}

{{/* One Secret key as an environment variable: (list $ "DATABASE_URL" false). */}}
{{- define "megacity.secretEnv" -}}
{{- $root := index . 0 -}}
- name: {{ index . 1 }}
  valueFrom:
    secretKeyRef:
      name: {{ include "megacity.secretName" $root }}
      key: {{ index . 1 }}
      optional: {{ index . 2 }}
{{- end -}}

{{/* The environment the router, the workers and the migrations job share. */}}
{{- define "megacity.env" -}}
{{ include "megacity.secretEnv" (list . "DATABASE_URL" false) }}
{{- if .Values.database.readReplica }}
{{ include "megacity.secretEnv" (list . "DATABASE_READ_URL" false) }}
{{- end }}
{{- if .Values.redis.auth }}
{{ include "megacity.secretEnv" (list . "REDIS_PASSWORD" false) }}
- name: REDIS_URL
  value: {{ printf "%s://:$(REDIS_PASSWORD)@%s:%d/%d" (ternary "rediss" "redis" .Values.redis.tls) .Values.redis.host (int .Values.redis.port) (int .Values.redis.db) | quote }}
{{- else }}
- name: REDIS_URL
  value: {{ printf "%s://%s:%d/%d" (ternary "rediss" "redis" .Values.redis.tls) .Values.redis.host (int .Values.redis.port) (int .Values.redis.db) | quote }}
{{- end }}
{{ include "megacity.secretEnv" (list . "MEGACITY_USER_HASH_KEY" false) }}
{{ include "megacity.secretEnv" (list . "MEGACITY_URL_SIGNING_KEY" false) }}
{{ include "megacity.secretEnv" (list . "MEGACITY_WATERMARK_KEY" true) }}
{{ include "megacity.secretEnv" (list . "MEGACITY_ADMIN_TOKEN" true) }}
{{ include "megacity.secretEnv" (list . "S3_ACCESS_KEY_ID" true) }}
{{ include "megacity.secretEnv" (list . "S3_SECRET_ACCESS_KEY" true) }}
- name: S3_BUCKET
  value: {{ required "storage.s3.bucket: the replicas need one shared object store" .Values.storage.s3.bucket | quote }}
{{- with .Values.storage.s3.endpointUrl }}
- name: S3_ENDPOINT_URL
  value: {{ . | quote }}
{{- end }}
- name: S3_REGION
  value: {{ .Values.storage.s3.region | quote }}
{{- with .Values.storage.s3.prefix }}
- name: S3_PREFIX
  value: {{ . | quote }}
{{- end }}
- name: MEGACITY_REGION
  value: {{ .Values.region | quote }}
- name: MEGACITY_CONFIG
  value: /etc/megacity/config/topology.yaml
- name: MEGACITY_PROTECTED_IDENTITIES_FILE
  value: /etc/megacity/config/protected_identities.yaml
- name: MEGACITY_DATA_DIR
  value: /var/lib/megacity
- name: MEGACITY_DB_AUTO_UPGRADE
  value: {{ .Values.database.autoUpgrade | quote }}
- name: MEGACITY_JOBS_KEY_PREFIX
  value: {{ .Values.worker.keyPrefix | quote }}
- name: MEGACITY_AUTH_ENABLED
  value: {{ .Values.auth.enabled | quote }}
- name: MEGACITY_AUTH_KEYS_DIR
  value: /etc/megacity/keys
{{- with .Values.auth.trustedRegions }}
- name: MEGACITY_AUTH_TRUSTED_REGIONS
  value: {{ toJson . | quote }}
{{- end }}
{{- with .Values.limits }}
- name: MEGACITY_LIMITS
  value: {{ toJson . | quote }}
{{- end }}
- name: MEGACITY_LOG_LEVEL
  value: {{ .Values.logLevel | quote }}
{{- end -}}

{{/* Volumes of the router and the workers: config, region keys, data, tmp. */}}
{{- define "megacity.appVolumes" -}}
- name: config
  configMap:
    name: {{ include "megacity.fullname" . }}-config
- name: data
  emptyDir: {}
- name: tmp
  emptyDir: {}
{{- range $region, $secret := .Values.auth.keySecrets }}
- name: keys-{{ $region }}
  secret:
    secretName: {{ $secret }}
    defaultMode: 0440
{{- end }}
{{- end -}}

{{- define "megacity.appVolumeMounts" -}}
- name: config
  mountPath: /etc/megacity/config
  readOnly: true
- name: data
  mountPath: /var/lib/megacity
- name: tmp
  mountPath: /tmp
{{- range $region, $secret := .Values.auth.keySecrets }}
- name: keys-{{ $region }}
  mountPath: /etc/megacity/keys/{{ $region }}
  readOnly: true
{{- end }}
{{- end -}}

{{/* GPU scheduling for a pod with `gpus` > 0: (list $ $component). */}}
{{- define "megacity.scheduling" -}}
{{- $root := index . 0 -}}
{{- $c := index . 1 -}}
{{- $nodeSelector := $c.nodeSelector | default dict -}}
{{- $tolerations := $c.tolerations | default list -}}
{{- if gt (int ($c.gpus | default 0)) 0 -}}
{{- $nodeSelector = merge (deepCopy $nodeSelector) $root.Values.gpu.nodeSelector -}}
{{- $tolerations = concat $root.Values.gpu.tolerations $tolerations -}}
{{- end -}}
{{- with $nodeSelector }}
nodeSelector:
{{ toYaml . | indent 2 }}
{{- end }}
{{- with $tolerations }}
tolerations:
{{ toYaml . | indent 2 }}
{{- end }}
{{- with $c.affinity }}
affinity:
{{ toYaml . | indent 2 }}
{{- end }}
{{- end -}}

{{/* Container resources, with the GPUs as a limit: (list $ $component). */}}
{{- define "megacity.resources" -}}
{{- $root := index . 0 -}}
{{- $c := index . 1 -}}
{{- $resources := deepCopy $c.resources -}}
{{- if gt (int ($c.gpus | default 0)) 0 -}}
{{- $limits := $resources.limits | default dict -}}
{{- $_ := set $limits $root.Values.gpu.resourceName (int $c.gpus) -}}
{{- $_ := set $resources "limits" $limits -}}
{{- $requests := $resources.requests | default dict -}}
{{- $_ := set $requests $root.Values.gpu.resourceName (int $c.gpus) -}}
{{- $_ := set $resources "requests" $requests -}}
{{- end -}}
{{ toYaml $resources }}
{{- end -}}

{{/* The Service of an engine or vLLM server, cross-region when asked: (list $ name node port). */}}
{{- define "megacity.nodeService" -}}
{{- $root := index . 0 -}}
{{- $name := index . 1 -}}
{{- $node := index . 2 -}}
{{- $port := index . 3 -}}
apiVersion: v1
kind: Service
metadata:
  name: {{ include "megacity.fullname" $root }}-{{ $name }}
  namespace: {{ $root.Release.Namespace }}
  labels:
    {{- include "megacity.labels" (list $root $name) | nindent 4 }}
    megacity.ai/metrics: "true"
  {{- if $root.Values.crossRegion.enabled }}
  annotations:
    external-dns.alpha.kubernetes.io/hostname: {{ printf "%s.%s" $node $root.Values.crossRegion.domain }}
    {{- with $root.Values.crossRegion.serviceAnnotations }}
    {{- toYaml . | nindent 4 }}
    {{- end }}
  {{- end }}
spec:
  type: {{ ternary $root.Values.crossRegion.serviceType "ClusterIP" $root.Values.crossRegion.enabled }}
  selector:
    {{- include "megacity.selectorLabels" (list $root $name) | nindent 4 }}
  ports:
    - name: http
      port: {{ $port }}
      targetPort: http
      protocol: TCP
{{- end -}}

{{/* KEDA on a Prometheus queue-depth gauge: (list $ name metric $autoscaling), where
$autoscaling has minReplicas, maxReplicas and waitingPerReplica. */}}
{{- define "megacity.queueScaledObject" -}}
{{- $root := index . 0 -}}
{{- $name := index . 1 -}}
{{- $metric := index . 2 -}}
{{- $scale := index . 3 -}}
{{- $fullname := printf "%s-%s" (include "megacity.fullname" $root) $name -}}
apiVersion: keda.sh/v1alpha1
kind: ScaledObject
metadata:
  name: {{ $fullname }}
  namespace: {{ $root.Release.Namespace }}
  labels:
    {{- include "megacity.labels" (list $root $name) | nindent 4 }}
spec:
  scaleTargetRef:
    name: {{ $fullname }}
  minReplicaCount: {{ $scale.minReplicas }}
  maxReplicaCount: {{ $scale.maxReplicas }}
  pollingInterval: {{ $root.Values.queueScaling.pollingInterval }}
  cooldownPeriod: 300
  advanced:
    horizontalPodAutoscalerConfig:
      behavior:
        scaleDown:
          stabilizationWindowSeconds: {{ $root.Values.queueScaling.scaleDownStabilizationSeconds }}
          policies:
            - {type: Pods, value: 1, periodSeconds: 120}
  triggers:
    - type: prometheus
      name: queue_depth
      metricType: AverageValue
      metadata:
        serverAddress: {{ $root.Values.prometheus.address | quote }}
        query: {{ printf "sum(%s{namespace=%q,service=%q})" $metric $root.Release.Namespace $fullname | quote }}
        threshold: {{ $scale.waitingPerReplica | quote }}
        activationThreshold: "0"
{{- end -}}

{{/* Probes on an HTTP path: (list startupPath readyPath livePath startupSeconds). */}}
{{- define "megacity.probes" -}}
startupProbe:
  httpGet: {path: {{ index . 0 }}, port: http}
  periodSeconds: 10
  timeoutSeconds: 3
  failureThreshold: {{ div (index . 3) 10 }}
readinessProbe:
  httpGet: {path: {{ index . 1 }}, port: http}
  periodSeconds: 5
  timeoutSeconds: 3
  failureThreshold: 2
livenessProbe:
  httpGet: {path: {{ index . 2 }}, port: http}
  periodSeconds: 10
  timeoutSeconds: 3
  failureThreshold: 3
{{- end -}}
