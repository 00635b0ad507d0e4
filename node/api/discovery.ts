// Discovery, as kubectl and client libraries ask for it: aggregated discovery
// (apidiscovery.k8s.io v2, or v2beta1 for kubectl 1.27, in exactly the media
// type asked for) or the legacy APIVersions/APIGroupList/APIResourceList.
// /version names a Kubernetes minor: the kubectl dispatcher picks its binary by it.
import { apiVersionOf, type KindDefinition, type KindRegistry } from '../kinds/kind.js'

const verbs = ['create', 'delete', 'deletecollection', 'get', 'list', 'patch', 'update', 'watch']

export const kubernetesCompatibility = { major: '1', minor: '32' }

export function versionInfo(shoalVersion: string): Record<string, string> {
  return {
    major: kubernetesCompatibility.major,
    minor: kubernetesCompatibility.minor,
    gitVersion: `v${kubernetesCompatibility.major}.${kubernetesCompatibility.minor}.0+shoal.${shoalVersion}`,
    gitCommit: 'shoal',
    gitTreeState: 'clean',
    buildDate: '2026-11-22T00:00:00Z',
    goVersion: 'node' + process.versions.node,
    compiler: 'tsc',
    platform: `${process.platform}/${process.arch === 'x64' ? 'amd64' : process.arch}`,
  }
}

/** Which aggregated discovery version the Accept header wants, if any. */
export function aggregatedVersion(accept: string | undefined): 'v2' | 'v2beta1' | null {
  for (const part of (accept ?? '').split(',')) {
    if (!part.includes('as=APIGroupDiscoveryList')) continue
    if (/v=v2beta1/.test(part)) return 'v2beta1'
    if (/v=v2(;|$)/.test(part)) return 'v2'
  }
  return null
}

export function aggregatedContentType(version: 'v2' | 'v2beta1'): string {
  return `application/json;g=apidiscovery.k8s.io;v=${version};as=APIGroupDiscoveryList`
}

function subresources(def: KindDefinition): Record<string, unknown>[] {
  const own = { group: def.group, version: def.version, kind: def.kind }
  const out: Record<string, unknown>[] = []
  if (def.subresources.status) out.push({ subresource: 'status', responseKind: own, verbs: ['get', 'patch', 'update'] })
  if (def.subresources.scale !== undefined) out.push({ subresource: 'scale', responseKind: { group: 'autoscaling', version: 'v1', kind: 'Scale' }, verbs: ['get', 'patch', 'update'] })
  if (def.subresources.log === true) out.push({ subresource: 'log', responseKind: own, verbs: ['get'] })
  return out
}

/** /api (core) or /apis (groups) as an APIGroupDiscoveryList. */
export function aggregatedDiscovery(kinds: KindRegistry, core: boolean, version: 'v2' | 'v2beta1'): Record<string, unknown> {
  const groups = new Map<string, KindDefinition[]>()
  for (const def of kinds.all()) {
    if ((def.group === '') !== core) continue
    groups.set(def.group, [...(groups.get(def.group) ?? []), def])
  }
  return {
    kind: 'APIGroupDiscoveryList',
    apiVersion: `apidiscovery.k8s.io/${version}`,
    metadata: {},
    items: [...groups].map(([group, defs]) => ({
      metadata: { name: group },
      versions: [
        {
          version: defs[0]!.version,
          freshness: 'Current',
          resources: defs.map((def) => ({
            resource: def.plural,
            responseKind: { group: def.group, version: def.version, kind: def.kind },
            scope: def.namespaced ? 'Namespaced' : 'Cluster',
            singularResource: def.singular,
            verbs,
            ...(def.shortNames.length > 0 ? { shortNames: def.shortNames } : {}),
            ...(def.categories.length > 0 ? { categories: def.categories } : {}),
            subresources: subresources(def),
          })),
        },
      ],
    })),
  }
}

export function legacyApiVersions(serverAddress: string): Record<string, unknown> {
  return { kind: 'APIVersions', versions: ['v1'], serverAddressByClientCIDRs: [{ clientCIDR: '0.0.0.0/0', serverAddress }] }
}

export function legacyGroupList(kinds: KindRegistry): Record<string, unknown> {
  const groups = kinds.groupVersions().filter((gv) => gv.group !== '')
  return {
    kind: 'APIGroupList',
    apiVersion: 'v1',
    groups: groups.map((gv) => {
      const groupVersion = { groupVersion: `${gv.group}/${gv.version}`, version: gv.version }
      return { name: gv.group, versions: [groupVersion], preferredVersion: groupVersion }
    }),
  }
}

export function legacyGroup(kinds: KindRegistry, group: string): Record<string, unknown> | null {
  return (legacyGroupList(kinds).groups as { name: string }[]).find((g) => g.name === group) ?? null
}

/** /api/v1 or /apis/GROUP/VERSION as an APIResourceList; null when nothing is served there. */
export function legacyResourceList(kinds: KindRegistry, group: string, version: string): Record<string, unknown> | null {
  const defs = kinds.all().filter((d) => d.group === group && d.version === version)
  if (defs.length === 0) return null
  const resources: Record<string, unknown>[] = []
  for (const def of defs) {
    resources.push({
      name: def.plural,
      singularName: def.singular,
      namespaced: def.namespaced,
      kind: def.kind,
      verbs,
      ...(def.shortNames.length > 0 ? { shortNames: def.shortNames } : {}),
      ...(def.categories.length > 0 ? { categories: def.categories } : {}),
    })
    for (const sub of subresources(def)) {
      const kind = sub.responseKind as { group: string; version: string; kind: string }
      resources.push({ name: `${def.plural}/${String(sub.subresource)}`, singularName: '', namespaced: def.namespaced, ...(kind.group === def.group ? {} : { group: kind.group, version: kind.version }), kind: kind.kind, verbs: sub.verbs })
    }
  }
  return { kind: 'APIResourceList', apiVersion: 'v1', groupVersion: apiVersionOf(defs[0]!), resources }
}
