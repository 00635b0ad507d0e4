// How the CLI (and tests) talk to a peer's API: the target comes from
// --kubeconfig, $KUBECONFIG, --data-dir (the local peer's kubeconfig) or the
// default data directory; requests go over HTTPS trusting the cluster CA.
import { readFile } from 'node:fs/promises'
import { request as httpRequest, type Agent as HttpAgent } from 'node:http'
import { request as httpsRequest } from 'node:https'
import { homedir } from 'node:os'
import { join } from 'node:path'
import { parseKubeconfig } from '../security/kubeconfig.js'
import { UsageError } from './args.js'

export const defaultDataDir = join(homedir(), '.shoal')

export interface ApiTarget {
  server: string
  caPem?: string
  token?: string
  insecureSkipTlsVerify?: boolean
  namespace: string
}

export interface TargetFlags {
  kubeconfig?: string | undefined
  'data-dir'?: string | undefined
  context?: string | undefined
}

/** Which kubeconfig the flags name: --kubeconfig, then --data-dir (explicit flags beat the environment), then $KUBECONFIG, then the default data dir. */
export function kubeconfigPath(flags: TargetFlags): string {
  if (flags.kubeconfig !== undefined) return flags.kubeconfig
  if (flags['data-dir'] !== undefined) return join(flags['data-dir'], 'kubeconfig')
  const fromEnv = process.env.KUBECONFIG?.split(':')[0]
  return fromEnv !== undefined && fromEnv !== '' ? fromEnv : join(defaultDataDir, 'kubeconfig')
}

export async function resolveTarget(flags: TargetFlags): Promise<ApiTarget> {
  const path = kubeconfigPath(flags)
  let text: string
  try {
    text = await readFile(path, 'utf8')
  } catch {
    throw new UsageError(`no kubeconfig at ${path}: run \`shoal up\` (it writes one into its data dir), pass --kubeconfig FILE or --data-dir DIR, or set KUBECONFIG`)
  }
  const k = parseKubeconfig(text, { path, ...(flags.context === undefined ? {} : { context: flags.context }) })
  return { server: k.server, namespace: k.namespace, ...(k.caPem === undefined ? {} : { caPem: k.caPem }), ...(k.token === undefined ? {} : { token: k.token }), insecureSkipTlsVerify: k.insecureSkipTlsVerify }
}

export interface ApiResponse {
  status: number
  headers: Record<string, string | string[] | undefined>
  text: string
}

export interface RequestOptions {
  body?: string
  contentType?: string
  accept?: string
  timeoutMs?: number
  /** Called with each chunk (watch streams, followed logs) and the response status; the promise settles when the stream ends. */
  onChunk?: (chunk: string, status: number) => void
  /** Abort the request (ends a watch). */
  signal?: AbortSignal
  /** Reuse connections (benchmarks, long sessions); by default Node's global agent. */
  agent?: HttpAgent
}

export function apiRequest(target: ApiTarget, method: string, path: string, o: RequestOptions = {}): Promise<ApiResponse> {
  const url = new URL(path, target.server)
  const secure = url.protocol === 'https:'
  const headers: Record<string, string> = { accept: o.accept ?? 'application/json' }
  if (target.token !== undefined) headers.authorization = `Bearer ${target.token}`
  if (o.body !== undefined) {
    headers['content-type'] = o.contentType ?? 'application/json'
    headers['content-length'] = String(Buffer.byteLength(o.body))
  }
  return new Promise((resolve, reject) => {
    const options = { method, headers, ...(o.signal === undefined ? {} : { signal: o.signal }), ...(o.agent === undefined ? {} : { agent: o.agent }), ...(secure ? { ca: target.caPem, rejectUnauthorized: target.insecureSkipTlsVerify !== true } : {}) }
    const req = (secure ? httpsRequest : httpRequest)(url, options, (res) => {
      let text = ''
      res.setEncoding('utf8')
      res.on('data', (chunk: string) => {
        if (o.onChunk !== undefined) o.onChunk(chunk, res.statusCode ?? 0)
        else text += chunk
      })
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, text }))
      res.on('error', reject)
    })
    if (o.timeoutMs !== undefined) req.setTimeout(o.timeoutMs, () => req.destroy(new Error(`no answer from ${url.host} within ${o.timeoutMs} ms`)))
    req.on('error', (err) => reject(new Error(`cannot reach ${url.host}: ${err.message}`)))
    if (o.body !== undefined) req.write(o.body)
    req.end()
  })
}

/** The message of a Status error body, or the raw text. */
export function errorMessage(response: ApiResponse): string {
  try {
    const body = JSON.parse(response.text) as { message?: string }
    if (typeof body.message === 'string') return body.message
  } catch {
    // not JSON: fall through to the text
  }
  return response.text.trim() || `HTTP ${response.status}`
}
