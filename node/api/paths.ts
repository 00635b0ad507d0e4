// Kubernetes REST paths: /api/v1/... for the core group, /apis/GROUP/VERSION/...
// for the others; namespaced kinds live under namespaces/NS/.
import type { KindDefinition, KindRegistry } from '../kinds/kind.js'
import { badRequest, notFound } from './status.js'

export interface ResourcePath {
  def: KindDefinition
  /** The namespace in the path, if any (absent on all-namespaces lists). */
  namespace?: string
  name?: string
  subresource?: string
}

/** Parse a resource path; null when it is not one (discovery and other routes). */
export function parseResourcePath(pathname: string, kinds: KindRegistry): ResourcePath | null {
  const parts = pathname.split('/').filter((p) => p !== '').map(decodeSegment)
  let group: string
  let version: string
  let rest: string[]
  if (parts[0] === 'api' && parts.length >= 3) {
    group = ''
    version = parts[1]!
    rest = parts.slice(2)
  } else if (parts[0] === 'apis' && parts.length >= 4) {
    group = parts[1]!
    version = parts[2]!
    rest = parts.slice(3)
  } else return null
  let namespace: string | undefined
  // namespaces/NAME[/status|/finalize] is the Namespace object itself; namespaces/NS/PLURAL/... is inside it.
  if (rest[0] === 'namespaces' && rest.length >= 3 && !(rest.length === 3 && (rest[2] === 'status' || rest[2] === 'finalize'))) {
    namespace = rest[1]
    rest = rest.slice(2)
  }
  const [plural, name, subresource, ...extra] = rest
  if (plural === undefined || extra.length > 0) return null
  const def = kinds.byResource(group, version, plural)
  if (def === undefined) throw notFound(plural, name ?? plural, group)
  if (namespace !== undefined && !def.namespaced) throw notFound(plural, name ?? plural, group)
  return { def, ...(namespace === undefined ? {} : { namespace }), ...(name === undefined ? {} : { name }), ...(subresource === undefined ? {} : { subresource }) }
}

function decodeSegment(segment: string): string {
  try {
    return decodeURIComponent(segment)
  } catch {
    throw badRequest(`the path segment "${segment}" is not valid percent-encoding`)
  }
}
