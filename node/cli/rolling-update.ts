// shoal rolling-update RC --image=IMAGE [--container NAME] [--update-period 1m0s]
// [--poll-interval 3s] [--timeout 5m0s] [--rollback]: Kubernetes 1.x's kubectl
// rolling-update for ReplicationControllers. The old controller's pods get a
// `deployment` label with the old template's hash (and its selector with
// them), a new controller NAME-HASH selects `deployment=HASH`, and
// rolling-updater.ts moves the pods over one at a time, gated on readiness.
// An interrupted update resumes when run again with the same image, or goes
// back with --rollback.
import { parse, UsageError } from './args.js'
import type { JsonObject } from './manifests.js'
import { nameOf } from './object-print.js'
import { resourcePath, type ResourceInfo } from './resources.js'
import { Session, targetOptions } from './session.js'
import { isNotFound, updateWithRetries, durationMs } from './workload.js'
import { desiredReplicasAnnotation, nextControllerAnnotation, originalReplicasAnnotation, RollingUpdateError, runRollingUpdate, sourceIdAnnotation, type ControllerObject } from './rolling-updater.js'

/** Adler-32, the checksum kubectl's HashObject printed in hex. */
export function adler32Hex(text: string): string {
  let a = 1
  let b = 0
  for (const byte of new TextEncoder().encode(text)) {
    a = (a + byte) % 65521
    b = (b + a) % 65521
  }
  return (((b << 16) | a) >>> 0).toString(16)
}

interface Flags {
  image?: string | undefined
  container?: string | undefined
  pullPolicy?: string | undefined
  deploymentKey: string
}

/** kubectl's CreateNewControllerFromCurrentController: the old controller with the new image, named and selected by the hash. */
export function nextController(old: ControllerObject, f: Flags & { image: string }): ControllerObject {
  const next = structuredClone(old)
  const containers = next.spec?.template?.spec?.containers ?? []
  if (containers.length === 0) throw new RollingUpdateError(`pod has no containers! (${old.metadata.name})`)
  if (containers.length > 1 && f.container === undefined) throw new RollingUpdateError('must specify container to update when updating a multi-container pod')
  const container = f.container === undefined ? containers[0]! : containers.find((c) => c.name === f.container)
  if (container === undefined) throw new RollingUpdateError(`container ${f.container} not found in pod`)
  container.image = f.image
  if (f.pullPolicy !== undefined) container.imagePullPolicy = f.pullPolicy
  const hash = adler32Hex(JSON.stringify(next))
  const annotations = Object.fromEntries(Object.entries(old.metadata.annotations ?? {}).filter(([k]) => ![nextControllerAnnotation, originalReplicasAnnotation, sourceIdAnnotation, desiredReplicasAnnotation].includes(k)))
  next.metadata = { name: `${old.metadata.name}-${hash}`, namespace: old.metadata.namespace, ...(old.metadata.labels === undefined ? {} : { labels: old.metadata.labels }), annotations }
  next.spec = { ...next.spec, selector: { ...next.spec?.selector, [f.deploymentKey]: hash } }
  const template = next.spec.template!
  template.metadata = { ...template.metadata, labels: { ...template.metadata?.labels, [f.deploymentKey]: hash } }
  delete next.status
  return next
}

/** kubectl's UpdateExistingReplicationController: point the old controller at the next one; label its pods (and selector) with the old hash. */
async function prepareOldController(session: Session, rcs: ResourceInfo, pods: ResourceInfo, old: ControllerObject, nextName: string, key: string): Promise<ControllerObject> {
  const namespace = old.metadata.namespace
  const path = resourcePath(rcs, namespace, old.metadata.name)
  if (old.spec?.selector?.[key] !== undefined) {
    return updateWithRetries<ControllerObject>(session, path, (o) => void (o.metadata.annotations = { ...o.metadata.annotations, [nextControllerAnnotation]: nextName }))
  }
  const value = `${adler32Hex(JSON.stringify(old))}-orig`
  // The template first, so pods created from now on carry the label; then the pods; then the selector.
  let rc = await updateWithRetries<ControllerObject>(session, path, (o) => {
    o.metadata.annotations = { ...o.metadata.annotations, [nextControllerAnnotation]: nextName }
    const template = o.spec!.template!
    template.metadata = { ...template.metadata, labels: { ...template.metadata?.labels, [key]: value } }
  })
  const oldSelector = Object.entries(rc.spec?.selector ?? {}).map(([k, v]) => `${k}=${v}`).join(',')
  const list = async (): Promise<JsonObject[]> => (await session.json<{ items?: JsonObject[] }>(resourcePath(pods, namespace), { query: { labelSelector: oldSelector } })).items ?? []
  for (const pod of await list()) {
    const name = (pod.metadata as { name: string }).name
    await session.json(resourcePath(pods, namespace, name), { method: 'PATCH', body: { metadata: { labels: { [key]: value } } }, contentType: 'application/merge-patch+json' })
  }
  rc = await updateWithRetries<ControllerObject>(session, path, (o) => void (o.spec!.selector = { ...o.spec!.selector, [key]: value }))
  // A pod the controller made from the old template in between would now be an orphan: delete it.
  for (const pod of await list()) {
    const meta = pod.metadata as { name: string; labels?: Record<string, string> }
    if (meta.labels?.[key] !== value) await session.json(resourcePath(pods, namespace, meta.name), { method: 'DELETE' }).catch((err: unknown) => (isNotFound(err) ? undefined : Promise.reject(err)))
  }
  return rc
}

async function loadController(session: Session, rcs: ResourceInfo, namespace: string, name: string | undefined): Promise<ControllerObject | undefined> {
  if (name === undefined || name === '') return undefined
  try {
    return await session.json<ControllerObject>(resourcePath(rcs, namespace, name))
  } catch (err) {
    if (isNotFound(err)) return undefined
    throw err
  }
}

export async function rollingUpdate(args: string[]): Promise<number> {
  const { values, positionals } = parse(args, {
    ...targetOptions,
    image: { type: 'string' },
    container: { type: 'string' },
    'image-pull-policy': { type: 'string' },
    'update-period': { type: 'string' },
    'poll-interval': { type: 'string' },
    timeout: { type: 'string' },
    'deployment-label-key': { type: 'string' },
    rollback: { type: 'boolean' },
  })
  if (positionals.length !== 1) throw new UsageError('usage: shoal rolling-update RC --image=IMAGE [--container NAME] [--update-period 1m0s] [--poll-interval 3s] [--timeout 5m0s] | shoal rolling-update RC --rollback')
  const rollback = values.rollback === true
  if (rollback === (values.image !== undefined)) throw new UsageError('rolling-update needs either --image=IMAGE or --rollback')
  const key = values['deployment-label-key'] ?? 'deployment'
  const timing = {
    updatePeriodMs: durationMs(values['update-period'] ?? '1m0s', '--update-period'),
    pollIntervalMs: durationMs(values['poll-interval'] ?? '3s', '--poll-interval'),
    timeoutMs: durationMs(values.timeout ?? '5m0s', '--timeout'),
  }
  const session = await Session.open(values)
  const discovery = await session.resources()
  const [rcs, pods] = [discovery.resolve('replicationcontrollers'), discovery.resolve('pods')]
  const namespace = session.namespace
  const out = (line: string): void => void process.stdout.write(`${line}\n`)
  let oldRc = await session.json<ControllerObject>(resourcePath(rcs, namespace, positionals[0]!))
  let newRc = await loadController(session, rcs, namespace, oldRc.metadata.annotations?.[nextControllerAnnotation])
  if (rollback) {
    if (newRc === undefined) throw new RollingUpdateError(`Could not find ${oldRc.metadata.annotations?.[nextControllerAnnotation] ?? 'an update in progress'} to rollback.`)
    // kubectl's AbortRollingUpdate: the abandoned controller becomes the old one, the original the target, back to its original size.
    const originalSize = oldRc.metadata.annotations?.[originalReplicasAnnotation]
    if (originalSize === undefined) throw new RollingUpdateError(`couldn't find original replica count of "${oldRc.metadata.name}"`)
    out(`Setting "${oldRc.metadata.name}" replicas to ${originalSize}`)
    const abandoned = newRc
    const target = await updateWithRetries<ControllerObject>(session, resourcePath(rcs, namespace, oldRc.metadata.name), (o) => {
      o.metadata.annotations = { ...o.metadata.annotations, [sourceIdAnnotation]: `${abandoned.metadata.name}:${abandoned.metadata.uid ?? ''}`, [desiredReplicasAnnotation]: originalSize }
    })
    await runRollingUpdate({ session, rcs, pods, namespace, oldRc: abandoned, newRc: target, ...timing, cleanup: 'delete', out })
  } else {
    const image = values.image!
    if (newRc !== undefined) {
      const inProgress = newRc.spec?.template?.spec?.containers?.[0]?.image
      if (inProgress !== image) throw new RollingUpdateError(`Found existing in-progress update to image (${inProgress}).\nEither continue in-progress update with --image=${inProgress} or rollback with --rollback`)
      out(`Found existing update in progress (${newRc.metadata.name}), resuming.`)
    } else {
      if (oldRc.spec?.template?.spec?.containers?.[0]?.image === image && values['image-pull-policy'] === undefined) {
        throw new UsageError('--image-pull-policy (Always|Never|IfNotPresent) must be provided when --image is the same as existing container image')
      }
      newRc = nextController(oldRc, { image, container: values.container, pullPolicy: values['image-pull-policy'], deploymentKey: key })
    }
    oldRc = await prepareOldController(session, rcs, pods, oldRc, newRc.metadata.name, key)
    await runRollingUpdate({ session, rcs, pods, namespace, oldRc, newRc, ...timing, cleanup: 'rename', out })
  }
  out(`${nameOf(rcs, { metadata: { name: positionals[0]! } })} rolling updated`)
  return 0
}
