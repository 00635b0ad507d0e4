// How the Docker runtime ties engine containers to pods: labels on every
// container (the only state it keeps, so a restarted agent rebuilds its view
// from the engine alone) and the container names derived from them. Several
// peers may share one engine; the node label keeps each to its own.

import type { SandboxSpec } from './runtime.js'

export const labelNode = 'io.shoal.node'
export const labelPodUid = 'io.shoal.pod.uid'
export const labelPodNamespace = 'io.shoal.pod.namespace'
export const labelPodName = 'io.shoal.pod.name'
export const labelContainerName = 'io.shoal.container.name'
export const labelContainerAttempt = 'io.shoal.container.attempt'
/** The image as the pod spec names it (the engine may report a normalized name). */
export const labelContainerImage = 'io.shoal.container.image'
/** The pod's grace period, so a restarted agent stops a pod deleted while it was down as its spec said (as the kubelet's own label). */
export const labelPodGracePeriodMs = 'io.shoal.pod.terminationGracePeriodMs'

/** The container name of a pod's infrastructure container (upper case: no Kubernetes container can be named so). */
export const infraContainerName = 'POD'

/** Docker refuses names outside [a-zA-Z0-9][a-zA-Z0-9_.-]*; long parts are cut to keep names readable. */
const namePartLengthMax = 63

/** What the labels of one engine container say it is. */
export interface ContainerIdentity {
  uid: string
  namespace: string
  podName: string
  containerName: string
  attempt: number
  image: string
  terminationGracePeriodMs?: number
}

export function containerLabels(nodeName: string, pod: SandboxSpec, containerName: string, attempt: number, image: string): Record<string, string> {
  return {
    [labelNode]: nodeName,
    [labelPodUid]: pod.uid,
    [labelPodNamespace]: pod.namespace,
    [labelPodName]: pod.name,
    [labelContainerName]: containerName,
    [labelContainerAttempt]: String(attempt),
    [labelContainerImage]: image,
    ...(pod.terminationGracePeriodMs === undefined ? {} : { [labelPodGracePeriodMs]: String(pod.terminationGracePeriodMs) }),
  }
}

/** Undefined for a container that carries our node label but not a complete identity (made by hand). */
export function identityFromLabels(labels: Record<string, string> | undefined): ContainerIdentity | undefined {
  if (labels === undefined) return undefined
  const uid = labels[labelPodUid]
  const containerName = labels[labelContainerName]
  const attempt = Number(labels[labelContainerAttempt] ?? '0')
  if (uid === undefined || containerName === undefined || !Number.isInteger(attempt)) return undefined
  const graceMs = Number(labels[labelPodGracePeriodMs] ?? 'NaN')
  return {
    ...(Number.isInteger(graceMs) && graceMs >= 0 ? { terminationGracePeriodMs: graceMs } : {}),
    uid,
    namespace: labels[labelPodNamespace] ?? '',
    podName: labels[labelPodName] ?? '',
    containerName,
    attempt,
    image: labels[labelContainerImage] ?? '',
  }
}

/** `shoal_<node>_<namespace>_<pod>_<uid>_<container>_<attempt>`, as Docker accepts names. */
export function engineContainerName(nodeName: string, pod: SandboxSpec, containerName: string, attempt: number): string {
  const parts = [nodeName, pod.namespace, pod.name, pod.uid, containerName].map(sanitizeNamePart)
  return ['shoal', ...parts, String(attempt)].join('_')
}

function sanitizeNamePart(part: string): string {
  const cleaned = part.replace(/[^a-zA-Z0-9_.-]/g, '-').slice(0, namePartLengthMax)
  return cleaned === '' ? 'x' : cleaned
}

/** The `filters` query value selecting this node's containers, optionally narrowed by more labels. */
export function labelFilters(nodeName: string, narrowedBy: Record<string, string> = {}): string {
  const labels = [`${labelNode}=${nodeName}`, ...Object.entries(narrowedBy).map(([key, value]) => `${key}=${value}`)]
  return JSON.stringify({ label: labels })
}
