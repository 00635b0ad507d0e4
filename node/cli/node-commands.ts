// shoal cordon, uncordon and drain, as kubectl does them: cordon marks the
// Node unschedulable (the scheduler then leaves it out), uncordon clears the
// mark, drain cordons and then deletes the node's pods so their controllers
// recreate them elsewhere. Drain refuses, before deleting anything, when a pod
// would be lost for good: one no controller recreates (unless --force), or one
// with emptyDir data (unless --delete-emptydir-data).
import { parse, UsageError } from './args.js'
import { ServerError, Session, targetOptions } from './session.js'

interface NodeView {
  spec?: { unschedulable?: boolean }
}

interface PodView {
  metadata: { name: string; namespace?: string; deletionTimestamp?: string; ownerReferences?: { controller?: boolean }[] }
  spec?: { volumes?: { emptyDir?: unknown }[] }
  status?: { phase?: string }
}

/** Drain found pods it may not delete without a flag. */
export class DrainRefusedError extends Error {
  override readonly name = 'DrainRefusedError'
}

function nodePath(name: string): string {
  return `/api/v1/nodes/${encodeURIComponent(name)}`
}

function nodeNames(positionals: string[], command: string): string[] {
  if (positionals.length === 0) throw new UsageError(`${command} takes the name of a node: shoal ${command} NODE`)
  return positionals.map((p) => p.replace(/^(nodes?|no)\//, ''))
}

/** Set or clear spec.unschedulable; prints kubectl's line. */
async function setUnschedulable(session: Session, name: string, unschedulable: boolean): Promise<void> {
  const node = await session.json<NodeView>(nodePath(name))
  const verb = unschedulable ? 'cordoned' : 'uncordoned'
  if ((node.spec?.unschedulable === true) === unschedulable) {
    process.stdout.write(`node/${name} already ${verb}\n`)
    return
  }
  // Uncordon removes the field, as kubectl's patch does (false is its zero value).
  const body = { spec: { unschedulable: unschedulable ? true : null } }
  await session.json(nodePath(name), { method: 'PATCH', body, contentType: 'application/merge-patch+json' })
  process.stdout.write(`node/${name} ${verb}\n`)
}

async function mark(args: string[], unschedulable: boolean): Promise<number> {
  const command = unschedulable ? 'cordon' : 'uncordon'
  const { values, positionals } = parse(args, targetOptions)
  const names = nodeNames(positionals, command)
  const session = await Session.open(values)
  for (const name of names) await setUnschedulable(session, name, unschedulable)
  return 0
}

export function cordon(args: string[]): Promise<number> {
  return mark(args, true)
}

export function uncordon(args: string[]): Promise<number> {
  return mark(args, false)
}

function podRef(pod: PodView): string {
  return `${pod.metadata.namespace ?? 'default'}/${pod.metadata.name}`
}

/** The pods to delete, or the refusal kubectl would print, checked for every pod before anything is deleted. */
function drainable(pods: PodView[], force: boolean, deleteEmptyDir: boolean): PodView[] {
  const live = pods.filter((p) => p.metadata.deletionTimestamp === undefined)
  // A finished pod loses nothing by going, controller or not.
  const finished = (p: PodView): boolean => p.status?.phase === 'Succeeded' || p.status?.phase === 'Failed'
  const uncontrolled = live.filter((p) => !finished(p) && !(p.metadata.ownerReferences ?? []).some((o) => o.controller === true))
  const localData = live.filter((p) => !finished(p) && (p.spec?.volumes ?? []).some((v) => v.emptyDir !== undefined))
  const problems: string[] = []
  if (uncontrolled.length > 0 && !force) problems.push(`cannot delete Pods that declare no controller (use --force to override): ${uncontrolled.map(podRef).join(', ')}`)
  if (localData.length > 0 && !deleteEmptyDir) problems.push(`cannot delete Pods with local storage (use --delete-emptydir-data to override): ${localData.map(podRef).join(', ')}`)
  if (problems.length > 0) throw new DrainRefusedError(problems.join('; '))
  if (uncontrolled.length > 0) process.stderr.write(`Warning: deleting Pods that declare no controller: ${uncontrolled.map(podRef).join(', ')}\n`)
  return live
}

export async function drain(args: string[]): Promise<number> {
  const { values, positionals } = parse(args, {
    ...targetOptions,
    force: { type: 'boolean' },
    'delete-emptydir-data': { type: 'boolean' },
    // Accepted for kubectl's sake: Shoal has no DaemonSets to ignore.
    'ignore-daemonsets': { type: 'boolean' },
  })
  const names = nodeNames(positionals, 'drain')
  const session = await Session.open(values)
  for (const name of names) {
    await setUnschedulable(session, name, true)
    const list = await session.json<{ items?: PodView[] }>('/api/v1/pods', { query: { fieldSelector: `spec.nodeName=${name}` } })
    const pods = drainable(list.items ?? [], values.force === true, values['delete-emptydir-data'] === true)
    for (const pod of pods) process.stdout.write(`evicting pod ${podRef(pod)}\n`)
    for (const pod of pods) {
      const path = `/api/v1/namespaces/${encodeURIComponent(pod.metadata.namespace ?? 'default')}/pods/${encodeURIComponent(pod.metadata.name)}`
      try {
        await session.json(path, { method: 'DELETE', body: { kind: 'DeleteOptions', apiVersion: 'v1', propagationPolicy: 'Background' } })
      } catch (err) {
        // Gone already: that is what drain wanted.
        if (!((err as Error).name === 'ServerError' && (err as ServerError).code === 404)) throw err
      }
      process.stdout.write(`pod/${pod.metadata.name} evicted\n`)
    }
    process.stdout.write(`node/${name} drained\n`)
  }
  return 0
}
