// The tcpSocket and exec checks, and the outcome helpers every check shares.
// (httpGet is `probe-http.ts`.)
import net from 'node:net'
import { execOutputBytesMax } from './runtime.js'
import type { ExecAction, ProbeOutcome, ProbeTarget, TcpSocketAction } from './probes.js'

export function failure(message: string): ProbeOutcome {
  return { result: 'failure', message }
}

export function success(message = ''): ProbeOutcome {
  return { result: 'success', message }
}

/** `host:port` as Go writes it (IPv6 in brackets). */
export function joinHostPort(host: string, port: number): string {
  return host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`
}

/** A connection error in Go's words, as kubelet's messages quote them. */
export function describeDialError(err: Error, address: string): string {
  const code = (err as NodeJS.ErrnoException).code
  if (code === 'ECONNREFUSED') return `dial tcp ${address}: connect: connection refused`
  if (code === 'EHOSTUNREACH') return `dial tcp ${address}: connect: no route to host`
  if (code === 'ENETUNREACH') return `dial tcp ${address}: connect: network is unreachable`
  if (code === 'ECONNRESET') return `read tcp ${address}: read: connection reset by peer`
  return `dial tcp ${address}: ${err.message}`
}

export function tcpSocketCheck(action: TcpSocketAction, podIp: string, timeoutMs: number, signal: AbortSignal): Promise<ProbeOutcome> {
  const host = action.host ?? podIp
  const address = joinHostPort(host, action.port)
  return new Promise((resolve) => {
    const socket = net.connect({ host, port: action.port })
    const finish = (outcome: ProbeOutcome): void => {
      clearTimeout(timer)
      signal.removeEventListener('abort', onAbort)
      socket.destroy()
      resolve(outcome)
    }
    const onAbort = (): void => finish(failure('probe cancelled'))
    const timer = setTimeout(() => finish(failure(`dial tcp ${address}: i/o timeout`)), timeoutMs)
    signal.addEventListener('abort', onAbort, { once: true })
    socket.once('connect', () => finish(success()))
    socket.once('error', (err) => finish(failure(describeDialError(err, address))))
  })
}

export async function execCheck(action: ExecAction, target: ProbeTarget, timeoutMs: number, signal: AbortSignal): Promise<ProbeOutcome> {
  const commandText = JSON.stringify(action.command.join(' '))
  let timer: NodeJS.Timeout | undefined
  let onAbort: (() => void) | undefined
  // The runtime enforces the timeout on the command itself; this only stops waiting for it.
  const stopWaiting = new Promise<ProbeOutcome>((resolve) => {
    timer = setTimeout(() => resolve(failure(`command ${commandText} timed out`)), timeoutMs)
    onAbort = () => resolve(failure('probe cancelled'))
    signal.addEventListener('abort', onAbort, { once: true })
  })
  const ran = target.exec(action.command, timeoutMs).then(
    ({ exitCode, output }): ProbeOutcome => {
      if (exitCode === 0) return success(capOutput(output))
      const said = capOutput(output).trimEnd()
      return failure(said !== '' ? said : `command ${commandText} exited with code ${exitCode}`)
    },
    (err: unknown) => failure(`command ${commandText} could not run: ${err instanceof Error ? err.message : String(err)}`),
  )
  try {
    return await Promise.race([ran, stopWaiting])
  } finally {
    clearTimeout(timer)
    if (onAbort !== undefined) signal.removeEventListener('abort', onAbort)
  }
}

function capOutput(output: string): string {
  return output.length > execOutputBytesMax ? output.slice(0, execOutputBytesMax) : output
}
