// Resource names resolved through the server's discovery, as kubectl does:
// /api lists the core versions, /apis the groups with their preferred version,
// and each group-version's APIResourceList names its resources, short names and
// subresources. A kind the server adds shows up here with no CLI change.

export interface ResourceInfo {
  group: string
  version: string
  /** pods, replicationcontrollers: the path segment. */
  plural: string
  singular: string
  kind: string
  namespaced: boolean
  shortNames: string[]
  verbs: string[]
  /** status, scale, log ... */
  subresources: string[]
  /** `all` and the like: names that stand for several resources. */
  categories: string[]
}

export class UnknownResourceError extends Error {
  override readonly name = 'UnknownResourceError'
}

interface ApiResourceEntry {
  name: string
  singularName?: string
  namespaced: boolean
  kind: string
  verbs?: string[]
  shortNames?: string[]
  categories?: string[]
}

type Fetch = (path: string) => Promise<unknown>

export function apiVersionOf(r: Pick<ResourceInfo, 'group' | 'version'>): string {
  return r.group === '' ? r.version : `${r.group}/${r.version}`
}

/** How kubectl names a kind in its messages: replicationcontroller, deployment.apps. */
export function kindName(r: Pick<ResourceInfo, 'group' | 'kind'>): string {
  return r.group === '' ? r.kind.toLowerCase() : `${r.kind.toLowerCase()}.${r.group}`
}

/** /api/v1/namespaces/NS/pods/NAME/log and the like; the namespace is left out for cluster-scoped kinds and all-namespace lists. */
export function resourcePath(r: ResourceInfo, namespace?: string, name?: string, subresource?: string): string {
  let path = r.group === '' ? `/api/${r.version}` : `/apis/${r.group}/${r.version}`
  if (r.namespaced && namespace !== undefined) path += `/namespaces/${encodeURIComponent(namespace)}`
  path += `/${r.plural}`
  if (name !== undefined) path += `/${encodeURIComponent(name)}`
  if (subresource !== undefined) path += `/${subresource}`
  return path
}

function groupVersionPath(group: string, version: string): string {
  return group === '' ? `/api/${version}` : `/apis/${group}/${version}`
}

/** An APIResourceList as ResourceInfos: subresources (pods/log) attach to their resource. */
export function parseResourceList(group: string, version: string, body: unknown): ResourceInfo[] {
  const entries = ((body as { resources?: ApiResourceEntry[] } | null)?.resources ?? []).filter((e) => typeof e.name === 'string')
  const byPlural = new Map<string, ResourceInfo>()
  for (const e of entries.filter((x) => !x.name.includes('/'))) {
    byPlural.set(e.name, {
      group,
      version,
      plural: e.name,
      singular: e.singularName !== undefined && e.singularName !== '' ? e.singularName : e.kind.toLowerCase(),
      kind: e.kind,
      namespaced: e.namespaced,
      shortNames: e.shortNames ?? [],
      verbs: e.verbs ?? [],
      subresources: [],
      categories: e.categories ?? [],
    })
  }
  for (const e of entries.filter((x) => x.name.includes('/'))) {
    const [plural, sub] = e.name.split('/', 2) as [string, string]
    byPlural.get(plural)?.subresources.push(sub)
  }
  return [...byPlural.values()]
}

export class Discovery {
  private constructor(
    private readonly fetch: Fetch,
    /** Core first, then the groups in the server's order: ties resolve as kubectl resolves them. */
    readonly all: ResourceInfo[],
    private readonly loaded: Set<string>,
  ) {}

  static async load(fetch: Fetch): Promise<Discovery> {
    // A server without groups may answer /apis with 404; any other failure (401, unreachable) is the user's to see.
    const noGroups = (err: unknown): { groups: [] } => {
      if ((err as { code?: unknown }).code === 404) return { groups: [] }
      throw err
    }
    const [core, groups] = await Promise.all([
      fetch('/api') as Promise<{ versions?: string[] }>,
      fetch('/apis').catch(noGroups) as Promise<{ groups?: { name: string; preferredVersion?: { version: string }; versions?: { version: string }[] }[] }>,
    ])
    const wanted: { group: string; version: string }[] = (core.versions ?? []).map((version) => ({ group: '', version }))
    for (const g of groups.groups ?? []) {
      const version = g.preferredVersion?.version ?? g.versions?.[0]?.version
      if (version !== undefined) wanted.push({ group: g.name, version })
    }
    const lists = await Promise.all(wanted.map(async (gv) => parseResourceList(gv.group, gv.version, await fetch(groupVersionPath(gv.group, gv.version)))))
    return new Discovery(fetch, lists.flat(), new Set(wanted.map((gv) => `${gv.group}/${gv.version}`)))
  }

  /** pods, pod, po, Pod, rc, replicationcontrollers, deployments.apps, deployments.v1.apps. */
  resolve(name: string): ResourceInfo {
    const lower = name.toLowerCase()
    const found = this.match(lower, () => true) ?? this.qualified(lower)
    if (found === undefined) throw new UnknownResourceError(`the server doesn't have a resource type "${name}"`)
    return found
  }

  /** A type name as the resources it stands for: itself, or a category's members (`all`). */
  expand(name: string): ResourceInfo[] {
    const lower = name.toLowerCase()
    const category = this.all.filter((r) => r.categories.includes(lower))
    if (category.length > 0 && this.match(lower, () => true) === undefined) return category
    return [this.resolve(name)]
  }

  /** The resource a manifest's apiVersion and kind are served at; versions that are not preferred are asked for on demand. */
  async forKind(apiVersion: string, kind: string): Promise<ResourceInfo> {
    const [group, version] = apiVersion.includes('/') ? (apiVersion.split('/', 2) as [string, string]) : ['', apiVersion]
    const find = (): ResourceInfo | undefined => this.all.find((r) => r.group === group && r.version === version && r.kind === kind)
    if (find() === undefined && !this.loaded.has(`${group}/${version}`)) {
      this.loaded.add(`${group}/${version}`)
      const body = await this.fetch(groupVersionPath(group, version)).catch(() => null)
      if (body !== null) this.all.push(...parseResourceList(group, version, body))
    }
    const found = find()
    if (found !== undefined) return found
    const hint = group === '' && /^v1beta\d$/.test(version) ? legacyHint : ''
    throw new UnknownResourceError(`no matches for kind "${kind}" in version "${apiVersion}"${hint}`)
  }

  private match(lower: string, inGroup: (r: ResourceInfo) => boolean): ResourceInfo | undefined {
    const candidates = this.all.filter(inGroup)
    return (
      candidates.find((r) => r.plural === lower) ??
      candidates.find((r) => r.singular === lower) ??
      candidates.find((r) => r.shortNames.includes(lower)) ??
      candidates.find((r) => r.kind.toLowerCase() === lower)
    )
  }

  private qualified(lower: string): ResourceInfo | undefined {
    const dot = lower.indexOf('.')
    if (dot < 0) return undefined
    const resource = lower.slice(0, dot)
    const rest = lower.slice(dot + 1)
    const byGroup = this.match(resource, (r) => r.group === rest)
    if (byGroup !== undefined) return byGroup
    const versionDot = rest.indexOf('.')
    if (versionDot < 0) return undefined
    const [version, group] = [rest.slice(0, versionDot), rest.slice(versionDot + 1)]
    return this.match(resource, (r) => r.group === group && r.version === version)
  }
}

const legacyHint =
  '; the v1beta1-3 API is gone, so rewrite the manifest as apiVersion: v1 ("id" becomes metadata.name, "desiredState" becomes spec, "replicaSelector" becomes spec.selector, "podTemplate" becomes spec.template, "labels" move to metadata.labels)'
