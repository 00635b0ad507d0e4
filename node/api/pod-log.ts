// GET pods/NAME/log. No agent runs containers yet (issue 6), so no container
// has ever started: the answer is what Kubernetes says for a container still
// waiting, a 400 naming the container, after the same checks of which
// container is meant. A missing pod is a 404 before any of that.
import type { ApiObject } from '../kinds/meta.js'
import { badRequest } from './status.js'

interface PodContainers {
  spec?: { containers?: { name?: string }[]; initContainers?: { name?: string }[] }
}

function namesOf(list: { name?: string }[] | undefined): string[] {
  return (list ?? []).map((c) => c.name ?? '').filter((n) => n !== '')
}

/** The container `?container=` names, or the pod's only one; a 400 when that is not clear. */
export function logContainer(pod: ApiObject, requested: string | null): string {
  const podName = pod.metadata.name ?? ''
  const { spec } = pod as ApiObject & PodContainers
  const containers = namesOf(spec?.containers)
  const initContainers = namesOf(spec?.initContainers)
  if (requested !== null && requested !== '') {
    if (!containers.includes(requested) && !initContainers.includes(requested)) throw badRequest(`container ${requested} is not valid for pod ${podName}`)
    return requested
  }
  if (containers.length === 1) return containers[0]!
  const init = initContainers.length > 0 ? ` or one of the init containers: [${initContainers.join(' ')}]` : ''
  throw badRequest(`a container name must be specified for pod ${podName}, choose one of: [${containers.join(' ')}]${init}`)
}

/** The log of a container, which cannot exist yet: always throws a Status. */
export function podLog(pod: ApiObject, query: URLSearchParams): never {
  const container = logContainer(pod, query.get('container'))
  if (query.get('previous') === 'true') throw badRequest(`previous terminated container "${container}" in pod "${pod.metadata.name ?? ''}" not found`)
  throw badRequest(`container "${container}" in pod "${pod.metadata.name ?? ''}" is waiting to start: no agent runs pods yet`)
}
