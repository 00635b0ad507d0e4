// Container probes as the kubelet runs them: a pod spec's probe turned into a
// typed spec (milliseconds, Kubernetes' defaults, named ports resolved), and
// one check of it. The per-container worker that repeats checks and applies
// the thresholds is `prober.ts`.
import type { ExecResult, PortSpec } from './runtime.js'
import { httpGetCheck } from './probe-http.js'
import { execCheck, failure, tcpSocketCheck } from './probe-checks.js'

export { probeUserAgent } from './probe-http.js'

export type ProbeType = 'liveness' | 'readiness' | 'startup'
export type ProbeResult = 'success' | 'failure'

/** One check's outcome; `message` says why it failed (kubelet's wording where it has one). */
export interface ProbeOutcome {
  result: ProbeResult
  message: string
}

export interface HttpGetAction {
  kind: 'httpGet'
  scheme: 'HTTP' | 'HTTPS'
  /** Undefined: the pod's IP. */
  host?: string
  port: number
  /** Starts with `/`; may carry a query. */
  path: string
  headers: { name: string; value: string }[]
}

export interface TcpSocketAction {
  kind: 'tcpSocket'
  /** Undefined: the pod's IP. */
  host?: string
  port: number
}

export interface ExecAction {
  kind: 'exec'
  command: string[]
}

/** A probe that cannot run as written (a port name the container does not declare, no handler): every check fails with `message`. */
export interface InvalidAction {
  kind: 'invalid'
  message: string
}

export type ProbeAction = HttpGetAction | TcpSocketAction | ExecAction | InvalidAction

/** A probe with every field set, times in milliseconds. */
export interface ProbeSpec {
  action: ProbeAction
  initialDelayMs: number
  periodMs: number
  timeoutMs: number
  successThreshold: number
  failureThreshold: number
}

/** What a check runs against: the pod's address, and a command runner for exec probes (backed by `ContainerRuntime.exec`). */
export interface ProbeTarget {
  podIp: string
  exec(command: string[], timeoutMs: number): Promise<ExecResult>
}

type IntOrString = number | string

/** A probe as the pod spec carries it (`node/kinds/pod-spec.ts`). */
export interface ProbeJson {
  httpGet?: { path?: string; port: IntOrString; host?: string; scheme?: string; httpHeaders?: { name: string; value: string }[] }
  tcpSocket?: { port: IntOrString; host?: string }
  exec?: { command?: string[] }
  grpc?: unknown
  initialDelaySeconds?: number
  periodSeconds?: number
  timeoutSeconds?: number
  successThreshold?: number
  failureThreshold?: number
}

/** Kubernetes' probe defaults. */
export const probeDefaults = { initialDelaySeconds: 0, periodSeconds: 10, timeoutSeconds: 1, successThreshold: 1, failureThreshold: 3 } as const

/** Turns a pod spec probe into a `ProbeSpec`; what cannot run becomes an `invalid` action (a failing probe), never a throw. */
export function probeFromSpec(probe: ProbeJson, containerPorts: PortSpec[]): ProbeSpec {
  const seconds = (value: number | undefined, fallback: number, minimum: number): number => (typeof value === 'number' && Number.isFinite(value) ? Math.max(minimum, value) : fallback)
  return {
    action: actionOf(probe, containerPorts),
    initialDelayMs: seconds(probe.initialDelaySeconds, probeDefaults.initialDelaySeconds, 0) * 1000,
    periodMs: seconds(probe.periodSeconds, probeDefaults.periodSeconds, 1) * 1000,
    timeoutMs: seconds(probe.timeoutSeconds, probeDefaults.timeoutSeconds, 1) * 1000,
    successThreshold: seconds(probe.successThreshold, probeDefaults.successThreshold, 1),
    failureThreshold: seconds(probe.failureThreshold, probeDefaults.failureThreshold, 1),
  }
}

function actionOf(probe: ProbeJson, containerPorts: PortSpec[]): ProbeAction {
  if (probe.httpGet !== undefined) {
    const get = probe.httpGet
    const port = resolvePort(get.port, containerPorts)
    if (typeof port === 'string') return { kind: 'invalid', message: `httpGet ${port}` }
    const path = get.path === undefined || get.path === '' ? '/' : get.path.startsWith('/') ? get.path : `/${get.path}`
    const scheme = get.scheme === 'HTTPS' ? 'HTTPS' : 'HTTP'
    return { kind: 'httpGet', scheme, host: emptyToUndefined(get.host), port, path, headers: get.httpHeaders ?? [] }
  }
  if (probe.tcpSocket !== undefined) {
    const port = resolvePort(probe.tcpSocket.port, containerPorts)
    if (typeof port === 'string') return { kind: 'invalid', message: `tcpSocket ${port}` }
    return { kind: 'tcpSocket', host: emptyToUndefined(probe.tcpSocket.host), port }
  }
  if (probe.exec !== undefined) {
    const command = probe.exec.command ?? []
    if (command.length === 0) return { kind: 'invalid', message: 'exec probe has no command' }
    return { kind: 'exec', command }
  }
  if (probe.grpc !== undefined) return { kind: 'invalid', message: 'grpc probes are not supported by Shoal' }
  return { kind: 'invalid', message: 'probe has no handler (httpGet, tcpSocket or exec)' }
}

/** A port number, or why there is none (as kubelet: a name first, then a number written as a string). */
function resolvePort(port: IntOrString, containerPorts: PortSpec[]): number | string {
  let number: number
  if (typeof port === 'number') number = port
  else {
    const named = containerPorts.find((p) => p.name === port)
    if (named !== undefined) number = named.containerPort
    else if (/^[0-9]+$/.test(port)) number = Number(port)
    else return `port "${port}" not found: the container declares no port of that name`
  }
  if (!Number.isInteger(number) || number < 1 || number > 65535) return `port ${String(port)} is not a valid port number`
  return number
}

function emptyToUndefined(value: string | undefined): string | undefined {
  return value === undefined || value === '' ? undefined : value
}

/** One check of `spec`. Never throws; `signal` cancels it (the outcome then no longer matters). */
export async function runProbe(spec: ProbeSpec, target: ProbeTarget, signal: AbortSignal): Promise<ProbeOutcome> {
  const action = spec.action
  try {
    switch (action.kind) {
      case 'httpGet':
        return await httpGetCheck(action, target.podIp, spec.timeoutMs, signal)
      case 'tcpSocket':
        return await tcpSocketCheck(action, target.podIp, spec.timeoutMs, signal)
      case 'exec':
        return await execCheck(action, target, spec.timeoutMs, signal)
      case 'invalid':
        return failure(action.message)
    }
  } catch (err) {
    return failure(`probe error: ${err instanceof Error ? err.message : String(err)}`)
  }
}
