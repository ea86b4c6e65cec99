{{/* Chart name, truncated to the 63 characters a label value allows. */}}
{{- define "kvant.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Release-scoped name of every object. */}}
{{- define "kvant.fullname" -}}
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

{{- define "kvant.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
{{ include "kvant.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{/* Immutable in a Deployment: only name and instance. */}}
{{- define "kvant.selectorLabels" -}}
app.kubernetes.io/name: {{ include "kvant.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "kvant.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "kvant.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "kvant.image" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}

{{/*
Memory request and limit, in MiB: resident weights (plus the share a hot swap holds twice),
the KV cache budget the scheduler allocates, the JVM heap, and JVM native overhead. Request and
limit are equal: an LLM server's footprint is known up front, and a pod that can exceed its
request is the first one the kubelet evicts under memory pressure.
*/}}
{{- define "kvant.memoryMiB" -}}
{{- $m := .Values.resources.memory -}}
{{- $model := int $m.modelMiB -}}
{{- $swap := div (mul $model (int $m.swapHeadroomPercent)) 100 -}}
{{- add $model $swap (int .Values.scheduler.kvCacheMb) (int $m.jvmHeapMiB) (int $m.jvmOverheadMiB) -}}
{{- end }}

{{/*
The JVM's bound on off-heap memory (-XX:MaxDirectMemorySize), in MiB: everything the estimate
holds besides the heap. The packed weights and the KV cache are GC-managed native memory, which
the JVM counts as direct memory and by default bounds by -Xmx, so without this a model whose
packed weights pass the heap size failed to load.
*/}}
{{- define "kvant.directMiB" -}}
{{- sub (int (include "kvant.memoryMiB" .)) (int .Values.resources.memory.jvmHeapMiB) -}}
{{- end }}

{{- define "kvant.memory" -}}
{{- if .Values.resources.memory.override -}}
{{- .Values.resources.memory.override -}}
{{- else -}}
{{- printf "%dMi" (int (include "kvant.memoryMiB" .)) -}}
{{- end -}}
{{- end }}

{{/* The server's compute threads: server.threads, else the CPU cores requested. */}}
{{- define "kvant.threads" -}}
{{- if gt (int .Values.server.threads) 0 }}{{ int .Values.server.threads }}{{ else }}{{ int .Values.resources.cpu }}{{ end -}}
{{- end }}

{{/*
terminationGracePeriodSeconds = preStop sleep + drain timeout + margin. The kubelet's clock starts
before preStop runs, so the sleep is paid out of the grace period; SIGKILL must come only after
the server has had its whole drain timeout.
*/}}
{{- define "kvant.terminationGrace" -}}
{{- if .Values.sidecar.enabled -}}
{{- /* Sidecar: the application stops first (its own shutdown), then kvant drains what is left. */ -}}
{{- add (int .Values.sidecar.applicationShutdownSeconds) (int .Values.server.drainTimeoutSeconds) (int .Values.server.terminationGraceMarginSeconds) -}}
{{- else -}}
{{- add (int .Values.server.preStopSleepSeconds) (int .Values.server.drainTimeoutSeconds) (int .Values.server.terminationGraceMarginSeconds) -}}
{{- end -}}
{{- end }}

{{/*
Liveness failure threshold: at least the configured one, and high enough that period x threshold
outlasts preStop + drain, because the server reports NOT_SERVING for the whole drain and a
liveness kill then would cut off the very requests the drain protects.
*/}}
{{- define "kvant.livenessFailureThreshold" -}}
{{- $p := .Values.probes.liveness -}}
{{- $needed := add (div (add (int .Values.server.preStopSleepSeconds) (int .Values.server.drainTimeoutSeconds)) (int $p.periodSeconds)) 2 -}}
{{- max (int $p.failureThreshold) $needed -}}
{{- end }}

{{/* Startup probe failure threshold covering probes.startupSeconds (rounded up). */}}
{{- define "kvant.startupFailureThreshold" -}}
{{- $period := int .Values.probes.startupPeriodSeconds -}}
{{- div (add (int .Values.probes.startupSeconds) (sub $period 1)) $period -}}
{{- end }}

{{/*
The probe action. Kubernetes' gRPC probe speaks plaintext only, so with TLS on it cannot reach the
health service; the chart then falls back to a TCP connect (alive and listening, but blind to
NOT_SERVING). A plaintext health-only port on the server would remove this gap.
*/}}
{{- define "kvant.probeAction" -}}
{{- if .Values.tls.enabled }}
tcpSocket:
  port: grpc
{{- else }}
grpc:
  port: {{ .Values.server.port }}
  service: ""
{{- end }}
{{- end }}

{{/* Mount paths of the secrets the config file points at. */}}
{{- define "kvant.secretsDir" -}}/var/run/secrets/kvant{{- end }}

{{/* The server's config.yaml, in the server's key names (ConfigLoader rejects unknown keys). */}}
{{- define "kvant.config" -}}
host: {{ .Values.server.host | quote }}
port: {{ .Values.server.port }}
{{- if .Values.sidecar.enabled }}
# The application talks over the socket; TCP stays for the kubelet's gRPC probes.
listen: {{ printf "unix://%s,tcp" (include "kvant.socketPath" .) | quote }}
{{- end }}
threads: {{ include "kvant.threads" . }}
drain_timeout_seconds: {{ .Values.server.drainTimeoutSeconds }}
{{- with .Values.reloadAgent.bucket }}
bucket: {{ . | quote }}
agent:
  # Downloads land on the writable staging volume; QBOM records go beside the model cache.
  staging_dir: {{ $.Values.storage.staging.mountPath | quote }}
  qbom_dir: {{ printf "%s/qbom" $.Values.storage.cache.mountPath | quote }}
{{- end }}
metrics:
  port: {{ .Values.metrics.port }}
  {{- with .Values.metrics.otlpEndpoint }}
  otlp_endpoint: {{ . | quote }}
  {{- end }}
model:
  path: {{ .Values.model.path | quote }}
  {{- with .Values.model.name }}
  name: {{ . | quote }}
  {{- end }}
  weights: {{ .Values.model.weights | quote }}
  kv: {{ .Values.model.kv | quote }}
  {{- with .Values.model.tokenizer }}
  tokenizer: {{ . | quote }}
  {{- end }}
  default_max_tokens: {{ .Values.model.defaultMaxTokens }}
scheduler:
  max_queue: {{ .Values.scheduler.maxQueue }}
  max_batch_tokens: {{ .Values.scheduler.maxBatchTokens }}
  max_sequences: {{ .Values.scheduler.maxSequences }}
  kv_cache_mb: {{ .Values.scheduler.kvCacheMb }}
  block_size: {{ .Values.scheduler.blockSize }}
  max_prompt_bytes: {{ int .Values.scheduler.maxPromptBytes }}
{{- if or .Values.auth.adminToken.secretName .Values.auth.generationToken.secretName .Values.tls.enabled }}
security:
  {{- with .Values.auth.adminToken }}{{ if .secretName }}
  admin_token_file: {{ printf "%s/admin/%s" (include "kvant.secretsDir" $) .key | quote }}
  {{- end }}{{ end }}
  {{- with .Values.auth.generationToken }}{{ if .secretName }}
  generation_token_file: {{ printf "%s/generation/%s" (include "kvant.secretsDir" $) .key | quote }}
  {{- end }}{{ end }}
  {{- if .Values.tls.enabled }}
  tls_cert: {{ printf "%s/tls/tls.crt" (include "kvant.secretsDir" .) | quote }}
  tls_key: {{ printf "%s/tls/tls.key" (include "kvant.secretsDir" .) | quote }}
  {{- if .Values.tls.mutual }}
  tls_client_ca: {{ printf "%s/tls/ca.crt" (include "kvant.secretsDir" .) | quote }}
  {{- end }}
  {{- end }}
{{- end }}
{{- end }}

{{/* The gRPC socket file in sidecar mode. */}}
{{- define "kvant.socketPath" -}}
{{- printf "%s/kvant.sock" (trimSuffix "/" .Values.sidecar.socketDir) -}}
{{- end }}

{{/*
The application container of sidecar mode: the user's container with the socket folder mounted
and KVANT_TARGET set.
*/}}
{{- define "kvant.sidecarApplication" -}}
{{- $app := deepCopy .Values.sidecar.application -}}
{{- if not $app.name }}{{ fail "sidecar.application.name is required when sidecar.enabled" }}{{ end -}}
{{- if not $app.image }}{{ fail "sidecar.application.image is required when sidecar.enabled" }}{{ end -}}
{{- $mount := dict "name" "kvant-socket" "mountPath" .Values.sidecar.socketDir -}}
{{- $_ := set $app "volumeMounts" (append (default (list) $app.volumeMounts) $mount) -}}
{{- $target := dict "name" "KVANT_TARGET" "value" (printf "unix://%s" (include "kvant.socketPath" .)) -}}
{{- $_ := set $app "env" (append (default (list) $app.env) $target) -}}
{{- toYaml $app -}}
{{- end }}
