// What a command acts on, from its arguments: `TYPE[,TYPE...] [NAME...]`,
// `TYPE/NAME...`, or the objects in -f manifests, each resolved through
// discovery and given the namespace it lives in.
import { UsageError } from './args.js'
import { ManifestError, readManifests, type Manifest } from './manifests.js'
import { type ResourceInfo } from './resources.js'
import type { Session } from './session.js'

export interface Selection {
  resource: ResourceInfo
  /** null: every object the selectors match. */
  names: string[] | null
  /** Absent for cluster-scoped kinds and for lists across all namespaces. */
  namespace: string | undefined
}

export interface Selected {
  selections: Selection[]
  /** Several kinds were asked for: names are printed as kind/name. */
  multipleTypes: boolean
}

/** Where a manifest's object lives: its own namespace, else -n or the context's, which must agree with it when -n is given. */
export function manifestNamespace(session: Session, resource: ResourceInfo, m: Manifest): string | undefined {
  if (!resource.namespaced) return undefined
  const own = m.object.metadata.namespace
  if (own !== undefined && own !== '' && session.explicitNamespace && own !== session.namespace) {
    throw new ManifestError(`the namespace from the provided object "${own}" does not match the namespace "${session.namespace}". You must pass '--namespace=${own}' to perform this operation.`)
  }
  return own !== undefined && own !== '' ? own : session.namespace
}

function key(s: Omit<Selection, 'names'>): string {
  return `${s.resource.group}/${s.resource.plural}/${s.namespace ?? ''}`
}

/** Group names by resource and namespace, keeping the order they were first named in. */
function grouped(entries: { resource: ResourceInfo; namespace: string | undefined; name: string }[]): Selection[] {
  const byKey = new Map<string, Selection>()
  for (const e of entries) {
    const existing = byKey.get(key(e))
    if (existing !== undefined) existing.names!.push(e.name)
    else byKey.set(key(e), { resource: e.resource, namespace: e.namespace, names: [e.name] })
  }
  return [...byKey.values()]
}

async function fromManifests(session: Session, filenames: string[]): Promise<Selected> {
  const discovery = await session.resources()
  const entries: { resource: ResourceInfo; namespace: string | undefined; name: string }[] = []
  for (const m of await readManifests(filenames)) {
    const resource = await discovery.forKind(m.object.apiVersion, m.object.kind)
    const name = m.object.metadata.name
    if (typeof name !== 'string' || name === '') throw new ManifestError(`error validating ${m.source}: a ${m.object.kind} needs metadata.name here`)
    entries.push({ resource, namespace: manifestNamespace(session, resource, m), name })
  }
  const selections = grouped(entries)
  return { selections, multipleTypes: new Set(selections.map((s) => `${s.resource.group}/${s.resource.plural}`)).size > 1 }
}

function namespaceFor(session: Session, resource: ResourceInfo, byName: boolean): string | undefined {
  if (!resource.namespaced) return undefined
  if (session.allNamespaces && byName) throw new UsageError('a resource cannot be retrieved by name across all namespaces')
  return session.allNamespaces ? undefined : session.namespace
}

/** The selections for `TYPE[,TYPE] [NAME...]`, `TYPE/NAME...` or -f FILE. */
export async function select(session: Session, positionals: string[], filenames: string[] | undefined, command: string): Promise<Selected> {
  if (filenames !== undefined && filenames.length > 0) {
    if (positionals.length > 0) throw new UsageError(`${command} -f takes no resource types or names (got "${positionals.join(' ')}")`)
    return fromManifests(session, filenames)
  }
  if (positionals.length === 0) throw new UsageError(`name a resource type (pods, rc, svc, nodes, ...) or pass -f FILE; e.g. shoal ${command} pods`)
  const discovery = await session.resources()
  if (positionals.every((p) => p.includes('/'))) {
    const entries = positionals.map((p) => {
      const [type, name] = [p.slice(0, p.indexOf('/')), p.slice(p.indexOf('/') + 1)]
      if (type === '' || name === '') throw new UsageError(`"${p}" is not TYPE/NAME`)
      const resource = discovery.resolve(type)
      return { resource, namespace: namespaceFor(session, resource, true), name }
    })
    const selections = grouped(entries)
    return { selections, multipleTypes: selections.length > 1 }
  }
  const [types, ...names] = positionals as [string, ...string[]]
  if (names.some((n) => n.includes('/'))) throw new UsageError('there is no need to name a resource type as a separate argument when passing arguments in TYPE/NAME form')
  const resources = types.split(',').filter((t) => t !== '').flatMap((t) => discovery.expand(t))
  const selections = resources.map((resource) => ({ resource, namespace: namespaceFor(session, resource, names.length > 0), names: names.length > 0 ? names : null }))
  return { selections, multipleTypes: resources.length > 1 }
}
