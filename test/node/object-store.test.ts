// The object store as the Raft state machine: commands applied in log order
// with their preconditions, cascading deletes, the watch window, and the
// state in LevelDB surviving a reopen and travelling in a snapshot.
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Level } from 'level'
import { afterEach, describe, expect, it } from 'vitest'
import { EntryType, type Entry, type Snapshot } from '../../consensus/types.js'
import { prepareCreate } from '../../node/api/prepare.js'
import { coreKinds } from '../../node/kinds/cluster.js'
import type { ApiObject } from '../../node/kinds/meta.js'
import { ClusterRegistry } from '../../node/registry.js'
import { PeerState, type StateDb } from '../../node/state/peer-state.js'
import { encodeStoreCommand, refOf, type CommandOutcome, type StoreCommand } from '../../node/store/commands.js'
import { ObjectStore } from '../../node/store/object-store.js'
import type { WatchEvent } from '../../node/store/watch.js'

const kinds = coreKinds()
const now = '2026-11-22T12:00:00Z'

function make(kind: string, body: Record<string, unknown>, namespace?: string): ApiObject {
  return prepareCreate(kinds.byKind('v1', kind)!, { apiVersion: 'v1', kind, ...body }, namespace, 'Strict', now).object
}

const ns = (name: string): ApiObject => make('Namespace', { metadata: { name } })
const pod = (name: string, extra: Record<string, unknown> = {}): ApiObject => make('Pod', { metadata: { name, labels: { app: 'web' }, ...extra }, spec: { containers: [{ name: 'c', image: 'nginx' }] } }, 'default')
const rc = (name: string): ApiObject =>
  make('ReplicationController', { metadata: { name }, spec: { replicas: 2, selector: { app: 'web' }, template: { metadata: { labels: { app: 'web' } }, spec: { containers: [{ name: 'c', image: 'nginx' }] } } } }, 'default')
const ownedBy = (owner: ApiObject) => ({ ownerReferences: [{ apiVersion: 'v1', kind: owner.kind, name: owner.metadata.name!, uid: owner.metadata.uid!, controller: true }] })

/** A store fed commands as a Raft log would: one index per command. */
class Log {
  readonly store = new ObjectStore(kinds, { watchEventsMax: 5, watchersMax: 2 })
  index = 0
  readonly events: WatchEvent[] = []

  apply(command: StoreCommand): CommandOutcome {
    this.index++
    const events: WatchEvent[] = []
    this.store.apply(this.index, command, [], events)
    for (const e of events) this.store.watches.publish(e)
    this.events.push(...events)
    return this.store.outcomeOf(this.index)![0]!
  }
}

describe('commands and their preconditions', () => {
  it('stamps the Raft index as resourceVersion and refuses duplicates, stale versions and missing objects as Kubernetes does', () => {
    const log = new Log()
    log.apply({ op: 'obj.create', object: ns('default') })
    const created = log.apply({ op: 'obj.create', object: pod('web-1') })
    expect(created).toMatchObject({ ok: true, object: { metadata: { name: 'web-1', resourceVersion: '2', generation: 1 } } })
    expect(log.apply({ op: 'obj.create', object: pod('web-1') })).toMatchObject({ ok: false, failure: { code: 409, reason: 'AlreadyExists', message: 'pods "web-1" already exists' } })
    expect(log.apply({ op: 'obj.create', object: { ...pod('x'), metadata: { ...pod('x').metadata, namespace: 'nowhere' } } })).toMatchObject({ ok: false, failure: { code: 404, message: 'namespaces "nowhere" not found' } })

    const stored = log.store.get(refOf(pod('web-1')))!
    const relabelled = { ...stored, metadata: { ...stored.metadata, labels: { app: 'web', tier: 'front' } } }
    expect(log.apply({ op: 'obj.update', object: relabelled, expectResourceVersion: '2' })).toMatchObject({ ok: true, object: { metadata: { resourceVersion: '5', generation: 1 } } })
    // The same write again, from a client that read version 2: someone changed it since.
    expect(log.apply({ op: 'obj.update', object: relabelled, expectResourceVersion: '2' })).toMatchObject({ ok: false, failure: { code: 409, reason: 'Conflict' } })
    expect(log.apply({ op: 'obj.update', object: pod('ghost') })).toMatchObject({ ok: false, failure: { code: 404, message: 'pods "ghost" not found' } })
    expect(log.apply({ op: 'obj.delete', ref: refOf(stored), expectUid: 'another-uid', propagation: 'Background' })).toMatchObject({ ok: false, failure: { code: 409 } })
    expect(log.store.get(refOf(stored))).toBeDefined()
    // An update meant for an earlier object of the same name (a status from an agent that saw the old pod) does not land.
    const formerUid = { ...relabelled, metadata: { ...relabelled.metadata, uid: 'the-pod-before' } }
    expect(log.apply({ op: 'obj.update', object: formerUid, subresource: 'status' })).toMatchObject({ ok: false, failure: { code: 409, reason: 'Conflict', message: expect.stringContaining('Precondition failed: UID in precondition: the-pod-before') } })
  })

  it('bumps generation only when the spec changes, and keeps the status unless the status subresource writes it', () => {
    const log = new Log()
    log.apply({ op: 'obj.create', object: ns('default') })
    const controller = (log.apply({ op: 'obj.create', object: rc('web') }) as { object: ApiObject }).object
    const withStatus = log.apply({ op: 'obj.update', object: { ...controller, status: { replicas: 2 } }, subresource: 'status' }) as { object: ApiObject }
    expect(withStatus.object).toMatchObject({ status: { replicas: 2 }, metadata: { generation: 1 } })
    const scaled = { ...withStatus.object, spec: { ...(withStatus.object.spec as object), replicas: 5 }, status: { replicas: 99 } }
    const after = log.apply({ op: 'obj.update', object: scaled }) as { object: ApiObject }
    expect(after.object).toMatchObject({ spec: { replicas: 5 }, status: { replicas: 2 }, metadata: { generation: 2 } })
  })
})

describe('cascading deletes', () => {
  function withOwnedPods(): { log: Log; owner: ApiObject } {
    const log = new Log()
    log.apply({ op: 'obj.create', object: ns('default') })
    const owner = (log.apply({ op: 'obj.create', object: rc('web') }) as { object: ApiObject }).object
    log.apply({ op: 'obj.batch', commands: [{ op: 'obj.create', object: pod('web-a', ownedBy(owner)) }, { op: 'obj.create', object: pod('web-b', ownedBy(owner)) }] })
    log.apply({ op: 'obj.create', object: pod('loner') })
    return { log, owner }
  }
  const podNames = (log: Log): string[] => log.store.list(kinds.byKind('v1', 'Pod')!).map((p) => p.metadata.name!)

  it('takes the dependents with their owner in the same entry (Background)', () => {
    const { log, owner } = withOwnedPods()
    log.apply({ op: 'obj.delete', ref: refOf(owner), propagation: 'Background' })
    expect(podNames(log)).toEqual(['loner'])
    expect(log.events.slice(-3).map((e) => [e.type, e.object.metadata.name, e.resourceVersion])).toEqual([
      ['DELETED', 'web', 5],
      ['DELETED', 'web-a', 5],
      ['DELETED', 'web-b', 5],
    ])
  })

  it('leaves orphans without the ownerReference (Orphan)', () => {
    const { log, owner } = withOwnedPods()
    log.apply({ op: 'obj.delete', ref: refOf(owner), propagation: 'Orphan' })
    expect(podNames(log)).toEqual(['loner', 'web-a', 'web-b'])
    expect(log.store.get(refOf(pod('web-a')))!.metadata.ownerReferences).toBeUndefined()
  })

  it('empties a namespace that is deleted', () => {
    const { log } = withOwnedPods()
    log.apply({ op: 'obj.delete', ref: refOf(ns('default')), propagation: 'Background' })
    expect(podNames(log)).toEqual([])
    expect(log.store.list(kinds.byKind('v1', 'ReplicationController')!)).toEqual([])
  })
})

describe('the watch window', () => {
  it('replays what came after a resourceVersion still in the window, refuses an older one with 410, and caps watchers', () => {
    const log = new Log()
    log.apply({ op: 'obj.create', object: ns('default') })
    for (let k = 0; k < 7; k++) log.apply({ op: 'obj.create', object: pod(`p${k}`) })
    // At least five events are kept (trimmed a quarter of that at a time): resourceVersions 3..8 now.
    const seen: string[] = []
    const stop = log.store.watches.watchFrom(5, (e) => seen.push(e.object.metadata.name!))
    expect(seen).toEqual(['p4', 'p5', 'p6'])
    log.apply({ op: 'obj.create', object: pod('p7') })
    expect(seen).toEqual(['p4', 'p5', 'p6', 'p7'])
    // After p7 (9) the window is 5..9: a watch from 4 resumes, one from 3 is too old.
    expect(() => log.store.watches.watchFrom(3, () => {})).toThrow(expect.objectContaining({ name: 'ResourceVersionTooOldError' }))
    log.store.watches.watchFrom(4, () => {})()
    const second = log.store.watches.watchFrom(9, () => {})
    expect(() => log.store.watches.watchFrom(9, () => {})).toThrow(expect.objectContaining({ name: 'TooManyWatchesError' }))
    stop()
    second()
    expect(log.store.watches.watchers).toBe(0)
  })
})

describe('the state in LevelDB', () => {
  let dir = ''
  afterEach(async () => {
    if (dir !== '') await rm(dir, { recursive: true, force: true })
    dir = ''
  })

  const entry = (index: number, command: StoreCommand): Entry => ({ index, term: 1, type: EntryType.Normal, data: encodeStoreCommand(command) })

  async function openState(path: string): Promise<{ state: PeerState; db: Level<Uint8Array, Uint8Array> }> {
    const db = new Level<Uint8Array, Uint8Array>(path, { keyEncoding: 'view', valueEncoding: 'view' })
    await db.open()
    const state = new PeerState(db as unknown as StateDb, new ClusterRegistry(db as unknown as StateDb), new ObjectStore(coreKinds()))
    await state.load()
    return { state, db }
  }

  it('survives a reopen exactly, and a snapshot carries the same objects to a fresh peer', async () => {
    dir = await mkdtemp(join(tmpdir(), 'shoal-store-'))
    const first = await openState(join(dir, 'a'))
    await first.state.apply([entry(1, { op: 'obj.create', object: ns('default') }), entry(2, { op: 'obj.create', object: pod('p1') })])
    // As the driver does: the state's writes go out with the next Ready's batch.
    await first.db.batch(first.state.takePendingWrites())
    await first.state.apply([entry(3, { op: 'obj.create', object: rc('web') }), entry(4, { op: 'obj.delete', ref: refOf(pod('p1')), propagation: 'Background' })])
    await first.db.batch(first.state.takePendingWrites())
    const objects = first.state.store.snapshotObjects()
    const snapshot: Snapshot = { metadata: { index: 4, term: 1, confState: { voters: ['a'], learners: [] } }, data: first.state.snapshotData() }
    await first.db.close()

    const reopened = await openState(join(dir, 'a'))
    expect(reopened.state.appliedIndex).toBe(4)
    expect(reopened.state.store.snapshotObjects()).toEqual(objects)
    await reopened.db.close()

    const fresh = await openState(join(dir, 'b'))
    await fresh.state.restore(snapshot)
    expect(fresh.state.appliedIndex).toBe(4)
    expect(fresh.state.store.snapshotObjects().map((o) => o.metadata.name).sort()).toEqual(['default', 'web'])
    await fresh.db.close()
    const freshAgain = await openState(join(dir, 'b'))
    expect(freshAgain.state.store.snapshotObjects()).toEqual(fresh.state.store.snapshotObjects())
    await freshAgain.db.close()
  })

  it('a snapshot installed over older state tells the change feed what it deleted, added and changed', async () => {
    dir = await mkdtemp(join(tmpdir(), 'shoal-store-'))
    const leader = await openState(join(dir, 'leader'))
    const lagging = await openState(join(dir, 'lagging'))
    const early = [entry(1, { op: 'obj.create', object: ns('default') }), entry(2, { op: 'obj.create', object: pod('gone') }), entry(3, { op: 'obj.create', object: rc('web') })]
    await leader.state.apply(early)
    await lagging.state.apply(early)
    const changed = structuredClone(leader.state.store.get({ apiVersion: 'v1', kind: 'ReplicationController', namespace: 'default', name: 'web' })!)
    changed.metadata.labels = { changed: 'yes' }
    await leader.state.apply([entry(4, { op: 'obj.delete', ref: refOf(pod('gone')), propagation: 'Background' }), entry(5, { op: 'obj.create', object: pod('new') }), entry(6, { op: 'obj.update', object: changed })])
    const snapshot: Snapshot = { metadata: { index: 6, term: 1, confState: { voters: ['a'], learners: [] } }, data: leader.state.snapshotData() }
    const seen: string[] = []
    lagging.state.store.watches.watchFrom(lagging.state.store.appliedIndex, (e) => seen.push(`${e.type} ${e.object.metadata.name} ${e.resourceVersion}`))
    await lagging.state.restore(snapshot)
    expect(seen.sort()).toEqual(['ADDED new 6', 'DELETED gone 6', 'MODIFIED web 6'])
    await leader.db.close()
    await lagging.db.close()
  })
})
