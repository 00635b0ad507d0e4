// One httpGet probe check, as kubelet does it: GET without following
// redirects, any status 200-399 passes, HTTPS without verifying the
// certificate, the body read up to a cap and thrown away.
import http from 'node:http'
import https from 'node:https'
import { describeDialError, failure, joinHostPort, success } from './probe-checks.js'
import type { HttpGetAction, ProbeOutcome } from './probes.js'

/** Sent as `User-Agent` by HTTP probes unless the probe sets its own (kubelet sends `kube-probe/<version>`). */
export const probeUserAgent = 'shoal-probe/0.1.0'

/** How much of a response body a check reads before it stops (kubelet: 10 KiB). */
export const probeResponseBodyBytesMax = 10 * 1024

export function httpGetCheck(action: HttpGetAction, podIp: string, timeoutMs: number, signal: AbortSignal): Promise<ProbeOutcome> {
  const host = action.host ?? podIp
  const address = joinHostPort(host, action.port)
  const url = `${action.scheme.toLowerCase()}://${address}${action.path}`
  const getUrl = `Get ${JSON.stringify(url)}`
  return new Promise((resolve) => {
    let settled = false
    let readingBody = false
    let request: http.ClientRequest | undefined
    const finish = (outcome: ProbeOutcome): void => {
      if (settled) return
      settled = true
      clearTimeout(timer)
      signal.removeEventListener('abort', onAbort)
      request?.destroy()
      resolve(outcome)
    }
    const onAbort = (): void => finish(failure('probe cancelled'))
    const timer = setTimeout(() => {
      const phase = readingBody ? 'Client.Timeout or context cancellation while reading body' : 'Client.Timeout exceeded while awaiting headers'
      finish(failure(`${getUrl}: context deadline exceeded (${phase})`))
    }, timeoutMs)
    signal.addEventListener('abort', onAbort, { once: true })
    const options: https.RequestOptions = { host, port: action.port, path: action.path, method: 'GET', headers: requestHeaders(action), agent: false }
    try {
      request = action.scheme === 'HTTPS' ? https.request({ ...options, rejectUnauthorized: false }) : http.request(options)
    } catch (err) {
      // A path with characters HTTP cannot carry, for one.
      finish(failure(`${getUrl}: ${err instanceof Error ? err.message : String(err)}`))
      return
    }
    request.once('error', (err) => finish(failure(`${getUrl}: ${describeDialError(err, address)}`)))
    request.once('response', (response) => {
      const status = response.statusCode ?? 0
      // 3xx passes as in kubelet; redirects are not followed.
      const outcome = status >= 200 && status < 400 ? success() : failure(`HTTP probe failed with statuscode: ${status}`)
      readingBody = true
      let bodyBytes = 0
      response.on('data', (chunk: Buffer) => {
        bodyBytes += chunk.length
        if (bodyBytes >= probeResponseBodyBytesMax) finish(outcome)
      })
      response.once('end', () => finish(outcome))
      response.once('error', () => finish(outcome))
    })
    request.end()
  })
}

/** Kubelet's defaults (`User-Agent`, `Accept: *\/*`), replaced by the probe's own headers of the same name; repeated names all go out. */
function requestHeaders(action: HttpGetAction): Record<string, string | string[]> {
  const headers: Record<string, string | string[]> = { 'user-agent': probeUserAgent, accept: '*/*' }
  const given = new Map<string, string[]>()
  for (const { name, value } of action.headers) {
    const key = name.toLowerCase()
    given.set(key, [...(given.get(key) ?? []), value])
  }
  for (const [key, values] of given) headers[key] = values.length === 1 ? (values[0] as string) : values
  return headers
}
