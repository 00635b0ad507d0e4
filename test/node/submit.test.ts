// Writes submitted together travel together (one Raft entry, one forwarding
// call), yet every writer gets its own outcome, and a follower answers only
// once it holds the write itself. Three real peers in this process.
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { prepareCreate } from '../../node/api/prepare.js'
import { submit } from '../../node/api/submit.js'
import type { ApiObject } from '../../node/kinds/meta.js'
import { Peer, defaultPeerOptions } from '../../node/peer.js'
import { refOf, type CommandOutcome } from '../../node/store/commands.js'
import { until } from './process-cluster.js'

let root = ''
const peers: Peer[] = []

beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), 'shoal-submit-'))
  const options = (name: string) => ({ ...defaultPeerOptions, dataDir: join(root, name), name, listen: ['/ip4/127.0.0.1/tcp/0'], apiHost: '127.0.0.1', apiPort: 0 })
  const first = await Peer.start(options('s1'))
  peers.push(first)
  await first.api
  for (const name of ['s2', 's3']) peers.push(await Peer.start({ ...options(name), join: first.joinToken }))
  await until(() => peers.every((p) => p.driver.node.status().conf.voters.length === 3 && p.driver.node.leaderId !== null && p.state.store.get({ apiVersion: 'v1', kind: 'Namespace', name: 'default' }) !== undefined), 30_000, '3 voters that know the leader and the default namespace')
})

afterAll(async () => {
  for (const p of peers) await p.stop()
  await rm(root, { recursive: true, force: true })
})

function pod(peer: Peer, name: string): ApiObject {
  const def = peer.state.store.kinds.byKind('v1', 'Pod')!
  // For another scheduler: the cluster's own leaves them alone, so their resourceVersions are this test's.
  return prepareCreate(def, { metadata: { name }, spec: { schedulerName: 'submit-test', containers: [{ name: 'c', image: 'nginx' }] } }, 'default', 'Strict', new Date().toISOString()).object
}

describe('writes submitted together', () => {
  it('share entries on their way through a follower, and each writer gets its own outcome', async () => {
    const follower = peers.find((p) => p.driver.node.role !== 'leader')!
    const existing = await submit(follower.submitter, { op: 'obj.create', object: pod(follower, 'existing') })
    const existingVersion = existing.outcomes[0]!.ok ? existing.outcomes[0]!.object!.metadata.resourceVersion : ''
    const before = follower.state.appliedIndex

    const fresh = Array.from({ length: 200 }, (_, k) => submit(follower.submitter, { op: 'obj.create', object: pod(follower, `batch-${k}`) }))
    const duplicate = submit(follower.submitter, { op: 'obj.create', object: pod(follower, 'existing') })
    const stale = submit(follower.submitter, { op: 'obj.update', object: pod(follower, 'existing'), expectResourceVersion: '1' })
    const results = await Promise.all([...fresh, duplicate, stale])

    const outcome = (k: number): CommandOutcome => results[k]!.outcomes[0]!
    for (let k = 0; k < 200; k++) {
      expect(outcome(k)).toMatchObject({ ok: true, object: { metadata: { name: `batch-${k}` } } })
      // Read-your-writes: the follower holds it before it answers.
      expect(follower.state.store.get(refOf(pod(follower, `batch-${k}`)))).toBeDefined()
    }
    expect(outcome(200)).toMatchObject({ ok: false, failure: { code: 409, reason: 'AlreadyExists' } })
    expect(outcome(201)).toMatchObject({ ok: false, failure: { code: 409, reason: 'Conflict' } })
    expect(follower.state.store.get(refOf(pod(follower, 'existing')))!.metadata.resourceVersion).toBe(existingVersion)
    // 202 writes in a handful of entries (one per batch of at most 256), not one each.
    expect(follower.state.appliedIndex - before).toBeLessThan(20)
    // Every peer applied the same log: the same objects at the same versions.
    await until(() => peers.every((p) => p.state.appliedIndex >= follower.state.appliedIndex), 10_000, 'every peer to catch up')
    const versions = (p: Peer) => JSON.stringify(p.state.store.snapshotObjects().filter((o) => o.kind === 'Pod').map((o) => [o.metadata.name, o.metadata.resourceVersion]).sort())
    expect(new Set(peers.map(versions)).size).toBe(1)
  })

  it('keeps a caller\'s own batch as one entry with all its outcomes', async () => {
    const leader = peers.find((p) => p.driver.node.role === 'leader')!
    const result = await submit(leader.submitter, { op: 'obj.batch', commands: [{ op: 'obj.create', object: pod(leader, 'pair-a') }, { op: 'obj.create', object: pod(leader, 'pair-a') }] })
    expect(result.outcomes.map((o) => o.ok)).toEqual([true, false])
  })
})
