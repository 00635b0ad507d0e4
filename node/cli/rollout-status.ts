// shoal rollout status deployment/NAME: kubectl's DeploymentStatusViewer over
// a watch of the one Deployment (fieldSelector metadata.name=NAME), until the
// rollout completes, its progress deadline passes (an error, exit 1), or
// --timeout runs out.
import { apiRequest } from './client.js'
import { RolloutError, requireDeployment } from './rollout-history.js'
import { resourcePath } from './resources.js'
import type { Session } from './session.js'
import { sleep, type NamedWorkload, type WorkloadObject } from './workload.js'

/** A watch the server ends (or that fails) is opened again after this pause. */
const rewatchDelayMs = 200

export interface DeploymentStatusView {
  observedGeneration?: number
  replicas?: number
  updatedReplicas?: number
  availableReplicas?: number
  conditions?: { type: string; reason?: string }[]
}

export interface StatusVerdict {
  message: string
  done: boolean
}

/** kubectl's DeploymentStatusViewer.Status; throws RolloutError when the rollout can no longer complete. */
export function deploymentStatus(d: WorkloadObject, revision = 0): StatusVerdict {
  const name = d.metadata.name
  if (revision > 0) {
    const current = Number(d.metadata.annotations?.['deployment.kubernetes.io/revision'] ?? 0)
    if (current !== revision) throw new RolloutError(`desired revision (${revision}) is different from the running revision (${current})`)
  }
  const status = (d.status ?? {}) as DeploymentStatusView
  if ((d.metadata.generation ?? 0) > (status.observedGeneration ?? 0)) return { message: 'Waiting for deployment spec update to be observed...', done: false }
  const progressing = (status.conditions ?? []).find((c) => c.type === 'Progressing')
  if (progressing?.reason === 'ProgressDeadlineExceeded') throw new RolloutError(`deployment "${name}" exceeded its progress deadline`)
  const replicas = d.spec?.replicas ?? 1
  const updated = status.updatedReplicas ?? 0
  if (updated < replicas) return { message: `Waiting for deployment "${name}" rollout to finish: ${updated} out of ${replicas} new replicas have been updated...`, done: false }
  if ((status.replicas ?? 0) > updated) return { message: `Waiting for deployment "${name}" rollout to finish: ${(status.replicas ?? 0) - updated} old replicas are pending termination...`, done: false }
  if ((status.availableReplicas ?? 0) < updated) return { message: `Waiting for deployment "${name}" rollout to finish: ${status.availableReplicas ?? 0} of ${updated} updated replicas are available...`, done: false }
  return { message: `deployment "${name}" successfully rolled out`, done: true }
}

export class RolloutTimeoutError extends Error {
  override readonly name = 'RolloutTimeoutError'
  constructor() {
    super('timed out waiting for the condition')
  }
}

interface StatusOptions {
  watch: boolean
  /** 0: no limit. */
  timeoutMs: number
  revision: number
}

/** Reads the Deployment, then follows its watch until the verdict is done. Each new message is printed once. */
export async function rolloutStatus(session: Session, target: NamedWorkload, o: StatusOptions): Promise<void> {
  requireDeployment(target, 'rollout status')
  const deadline = o.timeoutMs > 0 ? Date.now() + o.timeoutMs : Number.POSITIVE_INFINITY
  let printed = ''
  const judge = (d: WorkloadObject): boolean => {
    const verdict = deploymentStatus(d, o.revision)
    if (verdict.message !== printed) process.stdout.write(`${verdict.message}\n`)
    printed = verdict.message
    return verdict.done || !o.watch
  }
  for (;;) {
    const current = await session.json<WorkloadObject>(target.path)
    if (judge(current)) return
    if (Date.now() >= deadline) throw new RolloutTimeoutError()
    const finished = await watchUntil(session, target, current.metadata.resourceVersion ?? '', deadline, judge)
    if (finished) return
    if (Date.now() >= deadline) throw new RolloutTimeoutError()
    await sleep(rewatchDelayMs)
  }
}

/** One watch of the Deployment: true once `judge` says done; false when the stream ends first. Errors from `judge` end it. */
async function watchUntil(session: Session, target: NamedWorkload, resourceVersion: string, deadline: number, judge: (d: WorkloadObject) => boolean): Promise<boolean> {
  const abort = new AbortController()
  const timer = Number.isFinite(deadline) ? setTimeout(() => abort.abort(), Math.max(0, deadline - Date.now())) : undefined
  let buffered = ''
  let done = false
  let failure: unknown
  const path = resourcePath(target.resource, target.namespace)
  const query = new URLSearchParams({ watch: 'true', fieldSelector: `metadata.name=${target.name}`, resourceVersion, allowWatchBookmarks: 'true' })
  try {
    await apiRequest(session.target, 'GET', `${path}?${query.toString()}`, {
      signal: abort.signal,
      onChunk: (chunk, status) => {
        if (status >= 400 || done) return
        buffered += chunk
        for (let nl = buffered.indexOf('\n'); nl >= 0 && !done; nl = buffered.indexOf('\n')) {
          const line = buffered.slice(0, nl)
          buffered = buffered.slice(nl + 1)
          const event = JSON.parse(line) as { type: string; object: WorkloadObject }
          if (event.type !== 'ADDED' && event.type !== 'MODIFIED') continue
          try {
            done = judge(event.object)
          } catch (err) {
            failure = err
            done = true
          }
          if (done) abort.abort()
        }
      },
    })
  } catch (err) {
    if (!done && !abort.signal.aborted) throw err
  } finally {
    clearTimeout(timer)
  }
  if (failure !== undefined) throw failure
  return done
}
