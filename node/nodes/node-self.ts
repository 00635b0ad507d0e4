// Each peer's own Node object, as kubelet registers its node: the peer creates
// it when missing and rewrites the labels and status fields it owns (capacity,
// allocatable, addresses, nodeInfo, daemonEndpoints) only when they differ from
// what is stored. Conditions belong to the leader (node-lifecycle.ts), except
// the first ones, written with the object. The check is local and cheap; only
// a difference costs a Raft write.
import { apiVersionOf } from '../kinds/kind.js'
import type { ApiObject } from '../kinds/meta.js'
import { nodeKind } from '../kinds/cluster.js'
import { prepareCreate, prepareUpdate } from '../api/prepare.js'
import { singleOutcome, type SubmitResult } from '../api/submit.js'
import type { ObjectRef, StoreCommand } from '../store/commands.js'
import type { HostDescription } from './host-info.js'
import { decideReady, isoSeconds, nextConditions } from './readiness.js'

/** Conflicting writes (409) retried within one round before it gives up until the next. */
export const conflictRetriesMax = 5
/** Between rounds once the Node matches: a local comparison, no write. */
const recheckEveryMs = 10_000
/** Between rounds while the Node does not match yet (not registered, no leader); doubled up to recheckEveryMs. */
const retryFirstMs = 500

export type SyncOutcome = 'created' | 'updated' | 'unchanged' | 'waiting'

export interface NodeSelfOptions {
  peerId: string
  /** The Node's name: the peer's name, a DNS-1123 subdomain. */
  name: string
  /** The local replica. */
  store: { get(ref: ObjectRef): ApiObject | undefined }
  /** Through the leader; resolves once the write is applied on this peer. */
  submit: (command: StoreCommand) => Promise<SubmitResult>
  /** The peer is registered and has not left: only then may it have a Node. */
  isMember: () => boolean
  /** The host as the Node should describe it; null while not known yet (the API port is not bound). */
  describe: () => HostDescription | null
  nowMs: () => number
  sleep?: (ms: number) => Promise<void>
}

export class NodeSelf {
  private timer: ReturnType<typeof setTimeout> | null = null
  private running = false
  private retryMs = retryFirstMs
  /** Why the last round failed, for diagnosis; null after a good one. */
  lastError: string | null = null

  constructor(private readonly options: NodeSelfOptions) {}

  start(): void {
    this.running = true
    this.schedule(0)
  }

  stop(): void {
    this.running = false
    if (this.timer !== null) clearTimeout(this.timer)
    this.timer = null
  }

  private schedule(delayMs: number): void {
    if (!this.running) return
    this.timer = setTimeout(() => {
      this.timer = null
      void this.round().then(
        (outcome) => {
          this.lastError = null
          this.retryMs = outcome === 'waiting' ? Math.min(recheckEveryMs, this.retryMs * 2) : retryFirstMs
          this.schedule(outcome === 'waiting' ? this.retryMs : recheckEveryMs)
        },
        (err: unknown) => {
          this.lastError = (err as Error).message
          this.retryMs = Math.min(recheckEveryMs, this.retryMs * 2)
          this.schedule(this.retryMs)
        },
      )
    }, delayMs)
  }

  private get ref(): ObjectRef {
    return { apiVersion: apiVersionOf(nodeKind), kind: nodeKind.kind, name: this.options.name }
  }

  /** Make the stored Node match this host; conflicts are retried with backoff, at most conflictRetriesMax times. */
  async round(): Promise<SyncOutcome> {
    if (!this.options.isMember()) return 'waiting'
    const desired = this.options.describe()
    if (desired === null) return 'waiting'
    const sleep = this.options.sleep ?? ((ms: number) => new Promise<void>((r) => setTimeout(r, ms)))
    for (let attempt = 1; ; attempt++) {
      try {
        return await this.syncOnce(desired)
      } catch (err) {
        if (!isConflict(err) || attempt >= conflictRetriesMax) throw err
        await sleep(Math.min(1000, 50 * 2 ** attempt))
      }
    }
  }

  private async syncOnce(desired: HostDescription): Promise<SyncOutcome> {
    let current = this.options.store.get(this.ref)
    if (current === undefined) {
      await this.create(desired)
      return 'created'
    }
    let changed = false
    const labels = { ...(current.metadata.labels ?? {}), ...desired.labels }
    if (!sameJson(labels, current.metadata.labels ?? {})) {
      const { object } = prepareUpdate(nodeKind, { ...current, metadata: { ...current.metadata, labels } }, current, 'Strict')
      current = await this.write({ op: 'obj.update', object, expectResourceVersion: current.metadata.resourceVersion! })
      changed = true
    }
    const stored = (current.status ?? {}) as Record<string, unknown>
    const owned = desired.status as unknown as Record<string, unknown>
    if (Object.keys(owned).some((k) => !sameJson(owned[k], stored[k]))) {
      const { object } = prepareUpdate(nodeKind, { ...current, status: { ...stored, ...owned } }, current, 'Strict')
      await this.write({ op: 'obj.update', object, expectResourceVersion: current.metadata.resourceVersion!, subresource: 'status' })
      changed = true
    }
    return changed ? 'updated' : 'unchanged'
  }

  private async create(desired: HostDescription): Promise<void> {
    const nowMs = this.options.nowMs()
    // The peer is writing, so it is alive: it starts Ready, as a kubelet's first status says; the leader takes over from here.
    const conditions = nextConditions([], decideReady({ isSelf: true, member: null, leaderForMs: 0 }), { nowMs, lastHeardAtMs: nowMs }) ?? []
    const body = { metadata: { name: this.options.name, labels: desired.labels }, status: { ...desired.status, conditions } }
    const { object } = prepareCreate(nodeKind, body, undefined, 'Strict', isoSeconds(nowMs))
    await this.write({ op: 'obj.create', object })
  }

  private async write(command: StoreCommand): Promise<ApiObject> {
    return singleOutcome(await this.options.submit(command)).object!
  }
}

/** 409: Conflict (stale resourceVersion) or AlreadyExists (someone created it meanwhile): read again and retry. */
function isConflict(err: unknown): boolean {
  const e = err as { name?: string; code?: unknown }
  return e.name === 'StatusError' && e.code === 409
}

/** Equal as JSON values, whatever the order of object keys. */
export function sameJson(a: unknown, b: unknown): boolean {
  if (a === b) return true
  if (typeof a !== 'object' || typeof b !== 'object' || a === null || b === null) return false
  if (Array.isArray(a) !== Array.isArray(b)) return false
  if (Array.isArray(a)) return a.length === (b as unknown[]).length && a.every((v, k) => sameJson(v, (b as unknown[])[k]))
  const ka = Object.keys(a).filter((k) => (a as Record<string, unknown>)[k] !== undefined)
  const kb = Object.keys(b).filter((k) => (b as Record<string, unknown>)[k] !== undefined)
  return ka.length === kb.length && ka.every((k) => sameJson((a as Record<string, unknown>)[k], (b as Record<string, unknown>)[k]))
}
