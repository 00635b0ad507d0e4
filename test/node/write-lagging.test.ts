// A write through a peer whose replica lags the log (it just restarted, or the
// object was created through another peer a moment ago) must start from the
// newest object: the fault tests saw PATCH answer 404 for an object that an
// acknowledged create had made a second earlier.
import { describe, expect, it } from 'vitest'
import { prepareCreate } from '../../node/api/prepare.js'
import type { SubmitResult, Submitter } from '../../node/api/submit.js'
import { deleteObject, patchObject, replaceObject, type WriteContext } from '../../node/api/write.js'
import { coreKinds } from '../../node/kinds/cluster.js'
import type { ApiObject } from '../../node/kinds/meta.js'
import type { StoreCommand } from '../../node/store/commands.js'
import { ObjectStore } from '../../node/store/object-store.js'

const kinds = coreKinds()
const rcKind = kinds.byKind('v1', 'ReplicationController')!

/**
 * A log, its leader's store, and this peer's replica, which has applied the log only up to a point:
 * `catchUp` applies the rest, as a ReadIndex round would. Submits commit and apply on the leader only.
 */
class LaggingReplica implements Submitter {
  readonly store = new ObjectStore(kinds)
  private readonly leaderStore = new ObjectStore(kinds)
  private readonly log: StoreCommand[] = []

  async submit(command: StoreCommand): Promise<SubmitResult> {
    const index = this.commit(command)
    return { index, outcomes: this.leaderStore.outcomeOf(index)! }
  }

  /** Commits and applies on the leader; this replica applies it only when it catches up. */
  commit(command: StoreCommand): number {
    this.log.push(command)
    const index = this.log.length
    this.leaderStore.apply(index, command, [], [])
    this.leaderStore.appliedIndex = index
    return index
  }

  async catchUp(): Promise<void> {
    while (this.store.appliedIndex < this.log.length) {
      const index = this.store.appliedIndex + 1
      this.store.apply(index, this.log[index - 1]!, [], [])
      this.store.appliedIndex = index
    }
  }

  context(linearizable: boolean): WriteContext {
    return { store: this.store, submitter: this, nowIso: () => new Date().toISOString(), ...(linearizable ? { linearizableRead: () => this.catchUp() } : {}) }
  }
}

function make(kind: string, body: Record<string, unknown>, namespace?: string): ApiObject {
  return prepareCreate(kinds.byKind('v1', kind)!, { apiVersion: 'v1', kind, ...body }, namespace, 'Strict', new Date().toISOString()).object
}

const template = { metadata: { labels: { app: 'web' } }, spec: { containers: [{ name: 'web', image: 'web:1' }] } }

/** A replica that has the namespace, and a committed create of RC `web` it has not applied yet. */
function replicaBehindTheCreate(): LaggingReplica {
  const replica = new LaggingReplica()
  replica.commit({ op: 'obj.create', object: make('Namespace', { metadata: { name: 'default' } }) })
  void replica.catchUp()
  replica.commit({ op: 'obj.create', object: make('ReplicationController', { metadata: { name: 'web' }, spec: { replicas: 1, selector: { app: 'web' }, template } }, 'default') })
  return replica
}

const patchRequest = { def: rcKind, namespace: 'default', name: 'web', body: { spec: { replicas: 3 } }, fieldValidation: 'Strict' as const, dryRun: false }

describe('writes through a lagging replica', () => {
  it('a patch catches up before answering 404, and applies to the newest object', async () => {
    const replica = replicaBehindTheCreate()
    const { object } = await patchObject(replica.context(true), patchRequest, 'application/merge-patch+json')
    expect((object as ApiObject & { spec: { replicas: number } }).spec.replicas).toBe(3)
  })

  it('without a way to catch up the same patch is a 404 (what the fault tests saw)', async () => {
    const replica = replicaBehindTheCreate()
    await expect(patchObject(replica.context(false), patchRequest, 'application/merge-patch+json')).rejects.toMatchObject({ code: 404 })
  })

  it('a replace and a delete catch up too; an object that really is missing is still a 404', async () => {
    const replica = replicaBehindTheCreate()
    const ctx = replica.context(true)
    const body = { apiVersion: 'v1', kind: 'ReplicationController', metadata: { name: 'web', namespace: 'default' }, spec: { replicas: 2, selector: { app: 'web' }, template } }
    await replaceObject(ctx, { ...patchRequest, body })
    const deleted = await deleteObject(ctx, rcKind, 'default', 'web', { dryRun: false })
    expect(deleted.metadata.name).toBe('web')
    await expect(deleteObject(ctx, rcKind, 'default', 'missing', { dryRun: false })).rejects.toMatchObject({ code: 404 })
  })

  it('a patch that conflicts retries from the newest object, not the stale one it read', async () => {
    const replica = replicaBehindTheCreate()
    await replica.catchUp()
    // Another peer's update, committed but not yet applied here: our first attempt conflicts with it.
    const newer = structuredClone(replica.store.get({ apiVersion: 'v1', kind: 'ReplicationController', namespace: 'default', name: 'web' })!)
    newer.metadata.labels = { updated: 'elsewhere' }
    replica.commit({ op: 'obj.update', object: newer, expectResourceVersion: newer.metadata.resourceVersion })
    const { object } = await patchObject(replica.context(true), patchRequest, 'application/merge-patch+json')
    expect(object.metadata.labels).toEqual({ updated: 'elsewhere' })
    expect((object as ApiObject & { spec: { replicas: number } }).spec.replicas).toBe(3)
    // Without catching up, every retry reads the same stale object and the patch ends in a conflict.
    const stale = replicaBehindTheCreate()
    await stale.catchUp()
    const staleNewer = structuredClone(stale.store.get({ apiVersion: 'v1', kind: 'ReplicationController', namespace: 'default', name: 'web' })!)
    staleNewer.metadata.labels = { updated: 'elsewhere' }
    stale.commit({ op: 'obj.update', object: staleNewer, expectResourceVersion: staleNewer.metadata.resourceVersion })
    await expect(patchObject(stale.context(false), patchRequest, 'application/merge-patch+json')).rejects.toMatchObject({ code: 409 })
  })
})
