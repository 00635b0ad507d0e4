// shoal create -f, delete, scale and logs.
import { apiRequest } from './client.js'
import { parse, UsageError } from './args.js'
import { forEachManifest, isPerObjectError, printResult, resultFormat } from './each-manifest.js'
import type { JsonObject } from './manifests.js'
import { kindName, resourcePath, type ResourceInfo } from './resources.js'
import { select } from './selection.js'
import { ServerError, Session, targetOptions, withQuery } from './session.js'

export async function create(args: string[]): Promise<number> {
  if (args[0] === 'deployment' || args[0] === 'deploy') return (await import('./create-deployment.js')).createDeployment(args.slice(1))
  const { values, positionals } = parse(args, { ...targetOptions, filename: { type: 'string', short: 'f', multiple: true }, output: { type: 'string', short: 'o' } })
  const format = resultFormat(values.output)
  if (positionals.length > 0) throw new UsageError(`create takes -f FILE, not "${positionals.join(' ')}"`)
  const session = await Session.open(values)
  return forEachManifest(session, values.filename, 'create', 'creating', async (resource, namespace, m) => {
    const created = await session.json<JsonObject>(resourcePath(resource, namespace), { method: 'POST', body: m.object, query: { fieldValidation: 'Strict' } })
    printResult(resource, created, 'created', format)
  })
}

const cascadePolicies: Record<string, string> = { background: 'Background', true: 'Background', foreground: 'Foreground', orphan: 'Orphan', false: 'Orphan' }

function propagationPolicy(cascade: string | undefined): string {
  const policy = cascadePolicies[(cascade ?? 'background').toLowerCase()]
  if (policy === undefined) throw new UsageError(`--cascade must be background, foreground or orphan, not "${cascade}"`)
  return policy
}

async function deleteOne(session: Session, resource: ResourceInfo, namespace: string | undefined, name: string, policy: string, ignoreNotFound: boolean): Promise<void> {
  try {
    await session.json(resourcePath(resource, namespace, name), { method: 'DELETE', body: { kind: 'DeleteOptions', apiVersion: 'v1', propagationPolicy: policy } })
    process.stdout.write(`${kindName(resource)} "${name}" deleted\n`)
  } catch (err) {
    if (ignoreNotFound && (err as ServerError).name === 'ServerError' && (err as ServerError).code === 404) return
    throw err
  }
}

export async function remove(args: string[]): Promise<number> {
  const { values, positionals } = parse(args, {
    ...targetOptions,
    'all-namespaces': { type: 'boolean', short: 'A' },
    filename: { type: 'string', short: 'f', multiple: true },
    selector: { type: 'string', short: 'l' },
    all: { type: 'boolean' },
    cascade: { type: 'string' },
    'ignore-not-found': { type: 'boolean' },
  })
  const policy = propagationPolicy(values.cascade)
  const ignoreNotFound = values['ignore-not-found'] === true
  const session = await Session.open(values)
  if (values.filename !== undefined && values.filename.length > 0) {
    if (positionals.length > 0) throw new UsageError(`delete -f takes no resource types or names (got "${positionals.join(' ')}")`)
    return forEachManifest(session, values.filename, 'delete', 'deleting', (resource, namespace, m) => deleteOne(session, resource, namespace, m.object.metadata.name!, policy, ignoreNotFound))
  }
  const { selections } = await select(session, positionals, undefined, 'delete')
  const byName = selections.some((s) => s.names !== null)
  if (byName && (values.selector !== undefined || values.all === true)) throw new UsageError('name objects or select them with -l/--all, not both')
  if (!byName && values.selector === undefined && values.all !== true) throw new UsageError('name the objects to delete, or select them with -l SELECTOR or --all')
  let failed = 0
  let deleted = 0
  for (const sel of selections) {
    const targets = sel.names !== null ? sel.names.map((name) => ({ name, namespace: sel.namespace })) : await listNames(session, sel.resource, sel.namespace, values.selector)
    for (const t of targets) {
      try {
        await deleteOne(session, sel.resource, t.namespace, t.name, policy, ignoreNotFound)
        deleted++
      } catch (err) {
        if (!isPerObjectError(err)) throw err
        failed++
        process.stderr.write(`shoal delete: ${(err as Error).message}\n`)
      }
    }
  }
  if (deleted === 0 && failed === 0 && !byName) process.stderr.write('No resources found\n')
  return failed > 0 ? 1 : 0
}

async function listNames(session: Session, resource: ResourceInfo, namespace: string | undefined, selector: string | undefined): Promise<{ name: string; namespace: string | undefined }[]> {
  const list = await session.json<{ items?: { metadata?: { name?: string; namespace?: string } }[] }>(resourcePath(resource, namespace), { query: { labelSelector: selector } })
  return (list.items ?? []).map((o) => ({ name: o.metadata?.name ?? '', namespace: o.metadata?.namespace }))
}

export async function scale(args: string[]): Promise<number> {
  const { values, positionals } = parse(args, { ...targetOptions, filename: { type: 'string', short: 'f', multiple: true }, replicas: { type: 'string' } })
  const replicas = Number(values.replicas)
  if (values.replicas === undefined || values.replicas === '' || !Number.isInteger(replicas) || replicas < 0) throw new UsageError('--replicas=N is required, N a whole number >= 0')
  const session = await Session.open(values)
  const { selections } = await select(session, positionals, values.filename, 'scale')
  let failed = 0
  for (const sel of selections) {
    if (sel.names === null) throw new UsageError(`name the ${sel.resource.plural} to scale, e.g. shoal scale ${sel.resource.shortNames[0] ?? sel.resource.plural} NAME --replicas=${replicas}`)
    if (!sel.resource.subresources.includes('scale')) throw new UsageError(`${sel.resource.plural} cannot be scaled (the server has no scale subresource for them)`)
    for (const name of sel.names) {
      try {
        await session.json(resourcePath(sel.resource, sel.namespace, name, 'scale'), { method: 'PATCH', body: { spec: { replicas } }, contentType: 'application/merge-patch+json' })
        printResult(sel.resource, { metadata: { name } }, 'scaled', 'default')
      } catch (err) {
        if (!isPerObjectError(err)) throw err
        failed++
        process.stderr.write(`shoal scale: ${(err as Error).message}\n`)
      }
    }
  }
  return failed > 0 ? 1 : 0
}

function podName(arg: string): string {
  const slash = arg.indexOf('/')
  if (slash < 0) return arg
  const type = arg.slice(0, slash).toLowerCase()
  if (!['pod', 'pods', 'po'].includes(type)) throw new UsageError(`logs reads pods, not ${arg.slice(0, slash)}`)
  return arg.slice(slash + 1)
}

/** How long a plain (not followed) log request may stay silent. */
const logsTimeoutMs = 30_000

const durationUnitsMs: Record<string, number> = { ns: 1e-6, us: 1e-3, µs: 1e-3, ms: 1, s: 1000, m: 60_000, h: 3_600_000 }

/** A Go duration (`30s`, `5m`, `1h30m`, `1.5h`) as whole seconds, rounded up as kubectl rounds --since. */
export function durationSeconds(text: string): number {
  const parts = [...text.matchAll(/(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h)/g)]
  if (text === '' || parts.map((p) => p[0]).join('') !== text) throw new UsageError(`--since wants a duration such as 30s, 5m or 1h30m, not "${text}"`)
  const ms = parts.reduce((sum, p) => sum + Number(p[1]) * durationUnitsMs[p[2]!]!, 0)
  return Math.ceil(ms / 1000)
}

export async function logs(args: string[]): Promise<number> {
  const { values, positionals } = parse(args, {
    ...targetOptions,
    container: { type: 'string', short: 'c' },
    follow: { type: 'boolean', short: 'f' },
    previous: { type: 'boolean', short: 'p' },
    tail: { type: 'string' },
    since: { type: 'string' },
    'since-time': { type: 'string' },
    'limit-bytes': { type: 'string' },
    timestamps: { type: 'boolean' },
  })
  if (positionals.length !== 1) throw new UsageError('logs takes one pod: shoal logs [-f] [-c CONTAINER] [--tail N] [--since DURATION] [--previous] [--timestamps] POD')
  if (values.tail !== undefined && !/^-?\d+$/.test(values.tail)) throw new UsageError(`--tail wants a number of lines, not "${values.tail}"`)
  if (values['limit-bytes'] !== undefined && !/^\d+$/.test(values['limit-bytes'])) throw new UsageError(`--limit-bytes wants a number of bytes, not "${values['limit-bytes']}"`)
  if (values.since !== undefined && values['since-time'] !== undefined) throw new UsageError('at most one of --since-time / --since may be used')
  const sinceSeconds = values.since === undefined ? undefined : durationSeconds(values.since)
  const session = await Session.open(values)
  const pods = (await session.resources()).resolve('pods')
  const path = withQuery(resourcePath(pods, session.namespace, podName(positionals[0]!), 'log'), {
    container: values.container,
    follow: values.follow === true ? 'true' : undefined,
    previous: values.previous === true ? 'true' : undefined,
    tailLines: values.tail !== undefined && Number(values.tail) >= 0 ? values.tail : undefined,
    timestamps: values.timestamps === true ? 'true' : undefined,
    // kubectl sends no sinceSeconds for --since=0s.
    sinceSeconds: sinceSeconds === undefined || sinceSeconds === 0 ? undefined : String(sinceSeconds),
    sinceTime: values['since-time'],
    limitBytes: values['limit-bytes'] !== undefined && Number(values['limit-bytes']) > 0 ? values['limit-bytes'] : undefined,
  })
  let errorText = ''
  const response = await apiRequest(session.target, 'GET', path, {
    accept: '*/*',
    // A followed log may stay quiet for as long as the container does.
    ...(values.follow === true ? {} : { timeoutMs: logsTimeoutMs }),
    onChunk: (chunk, status) => {
      if (status >= 400) errorText += chunk
      else process.stdout.write(chunk)
    },
  })
  if (response.status >= 400) {
    let message = errorText.trim() || `HTTP ${response.status}`
    try {
      message = (JSON.parse(errorText) as { message?: string }).message ?? message
    } catch {
      // not a Status: the text is the message
    }
    throw new ServerError(response.status, '', message)
  }
  return 0
}
