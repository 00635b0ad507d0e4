// Writes the kubeconfig a cluster hands its admin (kubectl and `shoal` read the
// same file) and reads one back for our CLI. Only bearer-token users are
// supported: the cluster issues tokens, not client certificates.
import { readFileSync } from 'node:fs'
import { dirname, isAbsolute, resolve } from 'node:path'
import { parse, stringify } from 'yaml'

export interface KubeconfigInput {
  clusterName: string
  /** https://host:port of one peer's API. */
  server: string
  caPem: string
  token: string
  userName: string
  contextName: string
  namespace?: string
}

export interface KubeconfigTarget {
  server: string
  /** Absent when the cluster entry names no CA: the system roots apply. */
  caPem: string | undefined
  /** Absent for a user entry with no credentials at all (anonymous). */
  token: string | undefined
  namespace: string
  insecureSkipTlsVerify: boolean
  contextName: string
}

export interface ParseKubeconfigOptions {
  /** The file the text came from: relative certificate-authority and tokenFile paths resolve against its folder, as kubectl does. */
  path?: string
  /** Use this context instead of current-context (kubectl's --context). */
  context?: string
}

export class KubeconfigError extends Error {
  override readonly name = 'KubeconfigError'
}

// kubectl reads YAML 1.1 (go-yaml), where yes/no/on/off are booleans: writing
// 1.1 makes the writer quote such strings (a namespace called "on", say).
const yamlVersion = '1.1'

export function renderKubeconfig(input: KubeconfigInput): string {
  const context: Record<string, string> = { cluster: input.clusterName, user: input.userName }
  if (input.namespace !== undefined && input.namespace !== '') context['namespace'] = input.namespace
  const doc = {
    apiVersion: 'v1',
    kind: 'Config',
    clusters: [
      {
        name: input.clusterName,
        cluster: { server: input.server, 'certificate-authority-data': Buffer.from(input.caPem).toString('base64') },
      },
    ],
    users: [{ name: input.userName, user: { token: input.token } }],
    contexts: [{ name: input.contextName, context }],
    'current-context': input.contextName,
    preferences: {},
  }
  // lineWidth 0: keep the long base64 CA on one line rather than folded.
  return stringify(doc, { version: yamlVersion, lineWidth: 0 })
}

type Mapping = Record<string, unknown>

function isMapping(v: unknown): v is Mapping {
  return typeof v === 'object' && v !== null && !Array.isArray(v)
}

function optionalString(m: Mapping, key: string, where: string): string | undefined {
  const v = m[key]
  if (v === undefined || v === null || v === '') return undefined
  if (typeof v !== 'string') throw new KubeconfigError(`${where}: "${key}" must be a string`)
  return v
}

/** Finds `name` in a list of { name, <field>: {...} } entries (clusters, users, contexts). */
function namedEntry(root: Mapping, list: string, field: string, name: string): Mapping {
  const entries = root[list] ?? []
  if (!Array.isArray(entries)) throw new KubeconfigError(`"${list}" must be a list`)
  const entry: unknown = entries.find((e: unknown) => isMapping(e) && e['name'] === name)
  if (!isMapping(entry)) throw new KubeconfigError(`no entry named "${name}" in "${list}"`)
  const body = entry[field] ?? {}
  if (!isMapping(body)) throw new KubeconfigError(`${list} "${name}": "${field}" must be a mapping`)
  return body
}

function readReferenced(path: string, opts: ParseKubeconfigOptions, what: string): string {
  const full = isAbsolute(path) || opts.path === undefined ? path : resolve(dirname(opts.path), path)
  try {
    return readFileSync(full, 'utf8')
  } catch (err) {
    throw new KubeconfigError(`cannot read the ${what} file ${full}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`)
  }
}

function clusterCa(cluster: Mapping, where: string, opts: ParseKubeconfigOptions): string | undefined {
  const data = optionalString(cluster, 'certificate-authority-data', where)
  const file = optionalString(cluster, 'certificate-authority', where)
  let pem: string | undefined
  if (data !== undefined) {
    pem = Buffer.from(data, 'base64').toString('utf8')
  } else if (file !== undefined) {
    pem = readReferenced(file, opts, 'certificate-authority')
  }
  if (pem !== undefined && !pem.includes('-----BEGIN CERTIFICATE-----')) {
    throw new KubeconfigError(`${where}: the certificate authority is not a PEM certificate`)
  }
  return pem
}

function userToken(user: Mapping, where: string, opts: ParseKubeconfigOptions): string | undefined {
  const token = optionalString(user, 'token', where)
  if (token !== undefined) return token
  const file = optionalString(user, 'tokenFile', where)
  if (file !== undefined) {
    const fromFile = readReferenced(file, opts, 'tokenFile').trim()
    if (fromFile === '') throw new KubeconfigError(`${where}: the tokenFile ${file} is empty`)
    return fromFile
  }
  const other = ['client-certificate', 'client-certificate-data', 'exec', 'auth-provider', 'username'].find((k) => user[k] !== undefined)
  if (other !== undefined) throw new KubeconfigError(`${where} authenticates with "${other}"; shoal supports only "token" or "tokenFile"`)
  return undefined
}

function parseRoot(text: string): Mapping {
  let root: unknown
  try {
    root = parse(text, { version: yamlVersion })
  } catch (err) {
    throw new KubeconfigError(`the kubeconfig is not valid YAML: ${(err as Error).message.split('\n')[0] ?? ''}`)
  }
  if (!isMapping(root)) throw new KubeconfigError('the kubeconfig is not a YAML mapping')
  return root
}

function insecureFlag(cluster: Mapping, where: string): boolean {
  const v = cluster['insecure-skip-tls-verify'] ?? false
  if (typeof v !== 'boolean') throw new KubeconfigError(`${where}: "insecure-skip-tls-verify" must be true or false`)
  return v
}

/** Resolves the current (or given) context to the server, CA, token and namespace it names. */
export function parseKubeconfig(text: string, opts: ParseKubeconfigOptions = {}): KubeconfigTarget {
  const root = parseRoot(text)
  const contextName = opts.context ?? optionalString(root, 'current-context', 'the kubeconfig')
  if (contextName === undefined) throw new KubeconfigError('the kubeconfig sets no current-context; pass a context name')
  const context = namedEntry(root, 'contexts', 'context', contextName)
  const where = `context "${contextName}"`
  const clusterName = optionalString(context, 'cluster', where)
  if (clusterName === undefined) throw new KubeconfigError(`${where} names no cluster`)
  const cluster = namedEntry(root, 'clusters', 'cluster', clusterName)
  const clusterWhere = `cluster "${clusterName}"`
  const server = optionalString(cluster, 'server', clusterWhere)
  if (server === undefined) throw new KubeconfigError(`${clusterWhere} has no server`)
  if (!/^https?:\/\/[^/]/.test(server)) throw new KubeconfigError(`${clusterWhere}: server "${server}" is not an http(s) URL`)
  const userName = optionalString(context, 'user', where)
  const user = userName === undefined ? {} : namedEntry(root, 'users', 'user', userName)
  return {
    server,
    caPem: clusterCa(cluster, clusterWhere, opts),
    token: userToken(user, `user "${userName ?? ''}"`, opts),
    namespace: optionalString(context, 'namespace', where) ?? 'default',
    insecureSkipTlsVerify: insecureFlag(cluster, clusterWhere),
    contextName,
  }
}
