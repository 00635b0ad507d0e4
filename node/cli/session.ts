// One CLI command's conversation with a peer's Kubernetes API: the target from
// the kubeconfig, JSON requests that turn a Status into one clear error, and
// the discovery used to resolve resource names.
import { UsageError } from './args.js'
import { apiRequest, errorMessage, resolveTarget, type ApiResponse, type ApiTarget, type TargetFlags } from './client.js'
import { Discovery } from './resources.js'

/** Plain request/response calls give up after this long (writes commit through Raft within 5 s). */
const requestTimeoutMs = 30_000

/** The server answered with a failure Status. */
export class ServerError extends Error {
  override readonly name = 'ServerError'
  constructor(
    readonly code: number,
    readonly reason: string,
    message: string,
  ) {
    super(message)
  }
}

export interface CallOptions {
  body?: unknown
  contentType?: string
  accept?: string
  query?: Record<string, string | undefined>
}

export interface ResourceFlags extends TargetFlags {
  namespace?: string | undefined
  'all-namespaces'?: boolean | undefined
}

/** The flags every resource command shares (parseArgs option specs). */
export const targetOptions = {
  kubeconfig: { type: 'string' },
  'data-dir': { type: 'string' },
  context: { type: 'string' },
  namespace: { type: 'string', short: 'n' },
} as const

export function statusReason(response: ApiResponse): string {
  try {
    const body = JSON.parse(response.text) as { reason?: unknown }
    return typeof body.reason === 'string' ? body.reason : ''
  } catch {
    return ''
  }
}

/** `299 - "text"` warning headers, as the text. */
export function warningsOf(response: ApiResponse): string[] {
  const header = response.headers.warning
  const values = header === undefined ? [] : Array.isArray(header) ? header : [header]
  return values.map((v) => {
    const m = /^\d{3} \S+ "((?:[^"\\]|\\.)*)"/.exec(v)
    return m === null ? v : (JSON.parse(`"${m[1]}"`) as string)
  })
}

export function withQuery(path: string, query: Record<string, string | undefined> = {}): string {
  const params = new URLSearchParams()
  for (const [k, v] of Object.entries(query)) if (v !== undefined && v !== '') params.set(k, v)
  const text = params.toString()
  return text === '' ? path : `${path}${path.includes('?') ? '&' : '?'}${text}`
}

export class Session {
  private discovery: Promise<Discovery> | null = null

  private constructor(
    readonly target: ApiTarget,
    /** -n, else the kubeconfig context's namespace, else default. */
    readonly namespace: string,
    /** Whether -n was given (a manifest's own namespace must then agree with it). */
    readonly explicitNamespace: boolean,
    readonly allNamespaces: boolean,
  ) {}

  static async open(flags: ResourceFlags): Promise<Session> {
    const target = await resolveTarget(flags)
    if (flags.namespace === '') throw new UsageError('--namespace must not be empty')
    return new Session(target, flags.namespace ?? target.namespace, flags.namespace !== undefined, flags['all-namespaces'] === true)
  }

  resources(): Promise<Discovery> {
    this.discovery ??= Discovery.load((path) => this.json(path))
    return this.discovery
  }

  /** A request whose answer is returned whatever its status. */
  raw(method: string, path: string, o: CallOptions = {}): Promise<ApiResponse> {
    const body = o.body === undefined ? undefined : typeof o.body === 'string' ? o.body : JSON.stringify(o.body)
    return apiRequest(this.target, method, withQuery(path, o.query), {
      timeoutMs: requestTimeoutMs,
      ...(body === undefined ? {} : { body, contentType: o.contentType ?? 'application/json' }),
      ...(o.accept === undefined ? {} : { accept: o.accept }),
    })
  }

  /** A request that must succeed: the parsed JSON answer, or a ServerError with the Status message. */
  async json<T = unknown>(path: string, o: CallOptions & { method?: string } = {}): Promise<T> {
    const response = await this.raw(o.method ?? 'GET', path, o)
    if (response.status >= 400) throw new ServerError(response.status, statusReason(response), errorMessage(response))
    for (const w of warningsOf(response)) process.stderr.write(`Warning: ${w}\n`)
    try {
      return JSON.parse(response.text) as T
    } catch {
      throw new ServerError(response.status, 'InternalError', `the server answered ${path} with something that is not JSON`)
    }
  }
}
