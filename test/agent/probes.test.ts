// Probes against real sockets and real child processes: one-shot checks
// (httpGet, tcpSocket, exec), the spec conversion, and the workers' timing,
// thresholds and startup gating.
import { execFile } from 'node:child_process'
import http from 'node:http'
import https from 'node:https'
import net from 'node:net'
import { afterEach, describe, expect, it } from 'vitest'
import { probeFromSpec, probeUserAgent, runProbe, type ProbeOutcome, type ProbeSpec, type ProbeTarget, type ProbeType } from '../../node/agent/probes.js'
import { Prober } from '../../node/agent/prober.js'
import { ContainerProbers } from '../../node/agent/probe-set.js'
import type { ExecResult } from '../../node/agent/runtime.js'
import { createClusterCa, issueServingCertificate } from '../../node/security/ca.js'

const cleanups: (() => unknown)[] = []
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup()
})

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms))

/** An exec target backed by a real child process, as the process runtime's exec would be. */
function processTarget(podIp = '127.0.0.1'): ProbeTarget {
  return {
    podIp,
    exec: (command, timeoutMs) =>
      new Promise<ExecResult>((resolve) => {
        execFile(command[0] as string, command.slice(1), { timeout: timeoutMs }, (err, stdout, stderr) => {
          const code = err === null ? 0 : typeof err.code === 'number' ? err.code : 137
          resolve({ exitCode: code, output: stdout + stderr })
        })
      }),
  }
}

/** An exec target whose checks give `script`'s results in order (then the last one forever), noting when each ran. */
function scriptedTarget(script: ('ok' | 'fail')[], checkMs = 0): ProbeTarget & { calls: number[] } {
  const calls: number[] = []
  return {
    podIp: '127.0.0.1',
    calls,
    exec: async () => {
      const answer = script[Math.min(calls.length, script.length - 1)]
      calls.push(Date.now())
      if (checkMs > 0) await sleep(checkMs)
      return answer === 'ok' ? { exitCode: 0, output: '' } : { exitCode: 1, output: `check ${calls.length} failed\n` }
    },
  }
}

function spec(partial: Partial<ProbeSpec>): ProbeSpec {
  return { action: { kind: 'exec', command: ['check'] }, initialDelayMs: 0, periodMs: 40, timeoutMs: 1000, successThreshold: 1, failureThreshold: 1, ...partial }
}

async function listen(server: http.Server | https.Server | net.Server): Promise<number> {
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  cleanups.push(() => new Promise((resolve) => server.close(resolve)))
  if ('closeAllConnections' in server) cleanups.push(() => server.closeAllConnections())
  return (server.address() as net.AddressInfo).port
}

async function until(condition: () => boolean, timeoutMs = 3000): Promise<void> {
  const deadline = Date.now() + timeoutMs
  while (!condition()) {
    if (Date.now() > deadline) throw new Error('condition not met in time')
    await sleep(10)
  }
}

const never = new AbortController().signal

describe('probeFromSpec', () => {
  it('applies Kubernetes defaults and converts seconds to milliseconds', () => {
    const converted = probeFromSpec({ httpGet: { port: 8080 } }, [])
    expect(converted).toEqual({ action: { kind: 'httpGet', scheme: 'HTTP', host: undefined, port: 8080, path: '/', headers: [] }, initialDelayMs: 0, periodMs: 10_000, timeoutMs: 1000, successThreshold: 1, failureThreshold: 3 })
    const given = probeFromSpec({ exec: { command: ['true'] }, initialDelaySeconds: 5, periodSeconds: 2, timeoutSeconds: 3, successThreshold: 2, failureThreshold: 7 }, [])
    expect(given).toMatchObject({ initialDelayMs: 5000, periodMs: 2000, timeoutMs: 3000, successThreshold: 2, failureThreshold: 7 })
  })

  it('resolves named ports against the container ports; an unknown name is a failing probe that says so', async () => {
    const ports = [{ name: 'metrics', containerPort: 9090, protocol: 'TCP' as const }, { name: 'web', containerPort: 8080, protocol: 'TCP' as const }]
    expect(probeFromSpec({ httpGet: { port: 'web', path: 'healthz' } }, ports).action).toMatchObject({ kind: 'httpGet', port: 8080, path: '/healthz' })
    expect(probeFromSpec({ tcpSocket: { port: 'metrics' } }, ports).action).toEqual({ kind: 'tcpSocket', host: undefined, port: 9090 })
    expect(probeFromSpec({ tcpSocket: { port: '7000' } }, ports).action).toMatchObject({ port: 7000 })
    const unknown = probeFromSpec({ httpGet: { port: 'admin' } }, ports)
    expect(unknown.action.kind).toBe('invalid')
    const outcome = await runProbe(unknown, processTarget(), never)
    expect(outcome.result).toBe('failure')
    expect(outcome.message).toContain('"admin" not found')
    expect((await runProbe(probeFromSpec({ grpc: { port: 1 } }, ports), processTarget(), never)).message).toContain('grpc')
  })
})

describe('httpGet', () => {
  it('passes for 2xx and 3xx (not following the redirect), fails for 5xx, sends the probe headers to the pod IP', async () => {
    const seen: { url: string; headers: http.IncomingHttpHeaders }[] = []
    const server = http.createServer((req, res) => {
      seen.push({ url: req.url ?? '', headers: req.headers })
      if (req.url === '/ok') res.end('fine')
      else if (req.url === '/moved') res.writeHead(302, { location: '/broken' }).end()
      else res.writeHead(500).end('broken')
    })
    const port = await listen(server)
    const probe = (path: string): ProbeSpec => probeFromSpec({ httpGet: { port, path, httpHeaders: [{ name: 'X-Check', value: 'a' }, { name: 'X-Check', value: 'b' }] } }, [])
    expect(await runProbe(probe('/ok'), processTarget(), never)).toEqual({ result: 'success', message: '' })
    expect(seen[0]?.headers['user-agent']).toBe(probeUserAgent)
    expect(seen[0]?.headers['x-check']).toBe('a, b')
    expect(await runProbe(probe('/moved'), processTarget(), never)).toEqual({ result: 'success', message: '' })
    expect(seen.map((s) => s.url)).toEqual(['/ok', '/moved'])
    expect(await runProbe(probe('/broken'), processTarget(), never)).toEqual({ result: 'failure', message: 'HTTP probe failed with statuscode: 500' })
  })

  it('fails with a deadline message when the server does not answer within the timeout', async () => {
    const server = http.createServer(() => {
      // Never answers.
    })
    const port = await listen(server)
    const started = Date.now()
    const outcome = await runProbe({ ...probeFromSpec({ httpGet: { port, path: '/slow' } }, []), timeoutMs: 300 }, processTarget(), never)
    expect(Date.now() - started).toBeLessThan(2000)
    expect(outcome).toEqual({ result: 'failure', message: `Get "http://127.0.0.1:${port}/slow": context deadline exceeded (Client.Timeout exceeded while awaiting headers)` })
  })

  it('is cancelled by its signal: the request is dropped at once', async () => {
    let closed = false
    const server = http.createServer((req) => req.socket.once('close', () => (closed = true)))
    const port = await listen(server)
    const cancel = new AbortController()
    setTimeout(() => cancel.abort(), 100)
    const started = Date.now()
    const outcome = await runProbe({ ...probeFromSpec({ httpGet: { port } }, []), timeoutMs: 5000 }, processTarget(), cancel.signal)
    expect(Date.now() - started).toBeLessThan(1000)
    expect(outcome.result).toBe('failure')
    await until(() => closed)
  })

  it('fails with connection refused for a closed port', async () => {
    const port = await closedPort()
    const outcome = await runProbe(probeFromSpec({ httpGet: { port } }, []), processTarget(), never)
    expect(outcome).toEqual({ result: 'failure', message: `Get "http://127.0.0.1:${port}/": dial tcp 127.0.0.1:${port}: connect: connection refused` })
  })

  it('probes HTTPS without verifying the certificate', async () => {
    const ca = createClusterCa()
    const cert = issueServingCertificate(ca, { commonName: 'pod', dnsNames: ['pod.example'], ipAddresses: [] })
    const server = https.createServer({ cert: cert.certPem, key: cert.keyPem }, (_req, res) => res.end('ok'))
    const port = await listen(server)
    expect(await runProbe(probeFromSpec({ httpGet: { port, scheme: 'HTTPS', host: '127.0.0.1' } }, []), processTarget('127.0.0.9'), never)).toEqual({ result: 'success', message: '' })
  })
})

async function closedPort(): Promise<number> {
  const server = net.createServer()
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const port = (server.address() as net.AddressInfo).port
  await new Promise((resolve) => server.close(resolve))
  return port
}

describe('tcpSocket', () => {
  it('passes when the port accepts a connection and fails when it is closed', async () => {
    const port = await listen(net.createServer((socket) => socket.end()))
    expect(await runProbe(probeFromSpec({ tcpSocket: { port } }, []), processTarget(), never)).toEqual({ result: 'success', message: '' })
    const closed = await closedPort()
    expect(await runProbe(probeFromSpec({ tcpSocket: { port: closed } }, []), processTarget(), never)).toEqual({ result: 'failure', message: `dial tcp 127.0.0.1:${closed}: connect: connection refused` })
  })
})

describe('exec', () => {
  it('passes on exit 0 and fails with the output otherwise, or with a timeout', async () => {
    const exec = (command: string[], timeoutSeconds = 1): Promise<ProbeOutcome> => runProbe(probeFromSpec({ exec: { command }, timeoutSeconds }, []), processTarget(), never)
    expect(await exec(['sh', '-c', 'echo fine'])).toEqual({ result: 'success', message: 'fine\n' })
    expect(await exec(['sh', '-c', 'echo not ready >&2; exit 3'])).toEqual({ result: 'failure', message: 'not ready' })
    expect(await exec(['sh', '-c', 'exit 2'])).toEqual({ result: 'failure', message: 'command "sh -c exit 2" exited with code 2' })
    const started = Date.now()
    expect(await exec(['sleep', '5'])).toEqual({ result: 'failure', message: 'command "sleep 5" timed out' })
    expect(Date.now() - started).toBeLessThan(2500)
  })
})

function recordResults(): { results: { type: ProbeType; result: string; message: string; atMs: number }[]; onResult: (type: ProbeType, result: string, message: string) => void } {
  const results: { type: ProbeType; result: string; message: string; atMs: number }[] = []
  return { results, onResult: (type, result, message) => results.push({ type, result, message, atMs: Date.now() }) }
}

function startProber(prober: Prober | ContainerProbers): void {
  prober.start()
  cleanups.push(() => prober.stop())
}

describe('Prober', () => {
  it('flips liveness to failure only after failureThreshold failures in a row, then stops checking', async () => {
    const target = scriptedTarget(['fail', 'fail', 'ok', 'fail', 'fail', 'fail', 'ok'])
    const { results, onResult } = recordResults()
    const prober = new Prober({ type: 'liveness', spec: spec({ failureThreshold: 3 }), target, startedAtMs: Date.now(), onResult })
    expect(prober.result).toBe('success')
    startProber(prober)
    await until(() => results.length > 0)
    expect(results).toEqual([{ type: 'liveness', result: 'failure', message: 'check 6 failed', atMs: expect.any(Number) }])
    expect(target.calls.length).toBe(6)
    await sleep(200)
    expect(target.calls.length).toBe(6)
    expect(prober.running).toBe(false)
  })

  it('starts readiness as failure and needs successThreshold passes in a row to become ready', async () => {
    const target = scriptedTarget(['ok', 'fail', 'ok', 'ok', 'ok', 'fail', 'ok'])
    const { results, onResult } = recordResults()
    const prober = new Prober({ type: 'readiness', spec: spec({ successThreshold: 2, failureThreshold: 1 }), target, startedAtMs: Date.now(), onResult })
    expect(prober.result).toBe('failure')
    startProber(prober)
    await until(() => results.length === 3)
    expect(results.map((r) => r.result)).toEqual(['success', 'failure', 'success'])
    const callIndex = (r: { atMs: number }): number => target.calls.filter((t) => t <= r.atMs).length
    expect(results.map(callIndex)).toEqual([4, 6, 8])
    expect(prober.result).toBe('success')
  })

  it('waits initialDelay from the run start before the first check', async () => {
    const target = scriptedTarget(['ok'])
    const startedAtMs = Date.now()
    const { onResult } = recordResults()
    startProber(new Prober({ type: 'readiness', spec: spec({ initialDelayMs: 400, periodMs: 50 }), target, startedAtMs, onResult }))
    await until(() => target.calls.length > 0)
    expect((target.calls[0] as number) - startedAtMs).toBeGreaterThanOrEqual(390)
  })

  it('never runs two checks at once, and stop() ends checking and drops the check in flight', async () => {
    const target = scriptedTarget(['ok'], 150)
    const { results, onResult } = recordResults()
    const prober = new Prober({ type: 'readiness', spec: spec({ periodMs: 20, successThreshold: 3 }), target, startedAtMs: Date.now(), onResult })
    startProber(prober)
    await sleep(400)
    // 150 ms checks at a 20 ms period: back to back, never overlapping.
    const calls = [...target.calls]
    expect(calls.length).toBeGreaterThanOrEqual(2)
    expect(calls.length).toBeLessThanOrEqual(3)
    for (let k = 1; k < calls.length; k++) expect((calls[k] as number) - (calls[k - 1] as number)).toBeGreaterThanOrEqual(145)
    expect(results).toEqual([])
    prober.stop()
    const stoppedAt = target.calls.length
    await sleep(400)
    expect(target.calls.length).toBe(stoppedAt)
    expect(results).toEqual([])
    expect(prober.running).toBe(false)
  })
})

describe('ContainerProbers', () => {
  it('keeps liveness and readiness off until the startup probe passes, then checks them at once', async () => {
    const startup = scriptedTarget(['fail', 'fail', 'ok'])
    const readiness = scriptedTarget(['ok'])
    const liveness = scriptedTarget(['ok'])
    const { results, onResult } = recordResults()
    const execOf = (type: ProbeType): ProbeSpec['action'] => ({ kind: 'exec', command: [type] })
    const specs = { startup: spec({ action: execOf('startup'), failureThreshold: 5, periodMs: 60 }), readiness: spec({ action: execOf('readiness'), periodMs: 1000 }), liveness: spec({ action: execOf('liveness'), periodMs: 1000 }) }
    const target: ProbeTarget = { podIp: '127.0.0.1', exec: (command, timeoutMs) => ({ startup, readiness, liveness })[command[0] as ProbeType].exec(command, timeoutMs) }
    const probers = new ContainerProbers({ specs, target, startedAtMs: Date.now(), onResult })
    expect([probers.started, probers.ready]).toEqual([false, false])
    startProber(probers)
    await until(() => probers.ready)
    const startedAtMs = results.find((r) => r.type === 'startup')?.atMs as number
    expect(results.map((r) => `${r.type} ${r.result}`)).toEqual(['startup success', 'readiness success'])
    expect(startup.calls.length).toBe(3)
    // Gated until the startup probe passed, then checked without waiting their 1 s period.
    expect(readiness.calls.every((t) => t >= startedAtMs)).toBe(true)
    expect(liveness.calls.length).toBe(1)
    expect((readiness.calls[0] as number) - startedAtMs).toBeLessThan(200)
    expect(probers.started).toBe(true)
  })

  it('reports a startup probe that fails failureThreshold times, and liveness never runs', async () => {
    const startup = scriptedTarget(['fail'])
    const liveness = scriptedTarget(['ok'])
    const { results, onResult } = recordResults()
    const target: ProbeTarget = { podIp: '127.0.0.1', exec: (command, timeoutMs) => (command[0] === 'startup' ? startup : liveness).exec(command, timeoutMs) }
    const probers = new ContainerProbers({
      specs: { startup: spec({ action: { kind: 'exec', command: ['startup'] }, failureThreshold: 3 }), liveness: spec({ action: { kind: 'exec', command: ['liveness'] } }) },
      target,
      startedAtMs: Date.now(),
      onResult,
    })
    startProber(probers)
    await until(() => results.length > 0)
    expect(results).toEqual([{ type: 'startup', result: 'failure', message: 'check 3 failed', atMs: expect.any(Number) }])
    await sleep(150)
    expect(startup.calls.length).toBe(3)
    expect(liveness.calls.length).toBe(0)
    expect([probers.started, probers.ready]).toEqual([false, false])
  })
})
