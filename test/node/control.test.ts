// The leader's control framework on a real peer (in this process, a single
// voter): the loop runs controllers only while leading, on store changes and
// without overlapping rounds; events count their repeats.
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { prepareCreate } from '../../node/api/prepare.js'
import { submit } from '../../node/api/submit.js'
import { EventRecorder } from '../../node/control/events.js'
import { LeaderLoop, type Controller } from '../../node/control/leader-loop.js'
import type { ApiObject } from '../../node/kinds/meta.js'
import { Peer } from '../../node/peer.js'
import { startLocalPeer, type LocalPeer } from './local-peer.js'
import { until } from './process-cluster.js'

let peer: Peer
let local: LocalPeer | undefined

beforeAll(async () => {
  local = await startLocalPeer('control')
  peer = local.peer
})

afterAll(async () => {
  await local?.stop()
})

async function createPod(name: string): Promise<ApiObject> {
  const def = peer.state.store.kinds.byKind('v1', 'Pod')!
  const result = await submit(peer.submitter, { op: 'obj.create', object: prepareCreate(def, { metadata: { name }, spec: { containers: [{ name: 'c', image: 'nginx' }] } }, 'default', 'Strict', new Date().toISOString()).object })
  const outcome = result.outcomes[0]!
  if (!outcome.ok) throw new Error(outcome.failure.message)
  return outcome.object!
}

describe('LeaderLoop', () => {
  it('runs rounds on store changes, one at a time, only while leading, and goes on after a failed round', async () => {
    let leading = true
    let rounds = 0
    let running = 0
    let overlapped = false
    const errors: string[] = []
    const slow: Controller = {
      name: 'slow',
      round: async () => {
        rounds++
        running++
        if (running > 1) overlapped = true
        await new Promise((r) => setTimeout(r, 20))
        running--
        if (rounds === 2) throw new Error('a failed round')
      },
    }
    const loop = new LeaderLoop({ controllers: [slow], store: peer.state.store, leaderTerm: () => (leading ? 1 : null), roundEveryMs: 60_000, onError: (name, err) => errors.push(`${name}: ${err.message}`) })
    loop.start()
    await until(() => rounds >= 1, 2000, 'the first round')
    for (let k = 0; k < 5; k++) await createPod(`loop-${k}`)
    await until(() => rounds >= 3 && running === 0, 2000, 'rounds after the changes')
    expect(overlapped).toBe(false)
    expect(errors).toEqual(['slow: a failed round'])
    // Five changes while rounds ran are coalesced, not queued one round each.
    expect(rounds).toBeLessThan(8)

    leading = false
    const before = rounds
    await createPod('while-following')
    await new Promise((r) => setTimeout(r, 100))
    expect(rounds).toBe(before)
    loop.stop()
  })
})

describe('LeaderLoop wake-ups', () => {
  it('runs a controller again at the time its round asked for, once, the latest request replacing the earlier', async () => {
    const roundsAtMs: number[] = []
    let asks: (number | undefined)[] = []
    const timed: Controller = {
      name: 'timed',
      round: async () => {
        roundsAtMs.push(Date.now())
        const next = asks.shift()
        return next === undefined ? {} : { nextRoundAtMs: Date.now() + next }
      },
    }
    // No changes and no once-a-second rounds in the way: only the first round and the wake-ups.
    const loop = new LeaderLoop({ controllers: [timed], store: peer.state.store, leaderTerm: () => 1, roundEveryMs: 60_000 })
    asks = [300, undefined]
    loop.start()
    await until(() => roundsAtMs.length >= 2, 2000, 'the round asked for')
    expect(roundsAtMs[1]! - roundsAtMs[0]!).toBeGreaterThanOrEqual(295)
    expect(roundsAtMs[1]! - roundsAtMs[0]!).toBeLessThan(450)
    // The second round asked for nothing: no third.
    await new Promise((r) => setTimeout(r, 500))
    expect(roundsAtMs).toHaveLength(2)
    loop.stop()
  })

  it('keeps one wake-up per controller, and none once the loop stops', async () => {
    let rounds = 0
    const loop = new LeaderLoop({ controllers: [{ name: 'far', round: async () => (rounds++ === 0 ? { nextRoundAtMs: Date.now() + 200 } : {}) }], store: peer.state.store, leaderTerm: () => 1, roundEveryMs: 60_000 })
    loop.start()
    await until(() => rounds >= 1, 2000, 'the first round')
    loop.stop()
    await new Promise((r) => setTimeout(r, 400))
    expect(rounds).toBe(1)
  })
})

describe('LeaderLoop in a new term', () => {
  it('runs no round until the peer has caught up with what earlier leaders committed', async () => {
    let rounds = 0
    let release: () => void = () => {}
    const caughtUp = new Promise<void>((resolve) => (release = resolve))
    const loop = new LeaderLoop({ controllers: [{ name: 'counter', round: async () => void rounds++ }], store: peer.state.store, leaderTerm: () => 7, roundEveryMs: 50, caughtUp: () => caughtUp })
    loop.start()
    await new Promise((r) => setTimeout(r, 200))
    expect(rounds).toBe(0)
    release()
    await until(() => rounds > 0, 2000, 'a round once caught up')
    loop.stop()
  })
})

describe('EventRecorder', () => {
  it('counts a repeat on the same Event and keeps different messages apart', async () => {
    const pod = await createPod('evented')
    const recorder = new EventRecorder({ store: peer.state.store, submitter: peer.submitter, source: { component: 'test', host: 'control' }, nowIso: () => new Date().toISOString() })
    await recorder.record(pod, 'Warning', 'FailedScheduling', '0/1 nodes are available: 1 Insufficient cpu.')
    await recorder.record(pod, 'Warning', 'FailedScheduling', '0/1 nodes are available: 1 Insufficient cpu.')
    await recorder.record(pod, 'Normal', 'Scheduled', 'Successfully assigned default/evented to control')
    const events = peer.state.store.list(peer.state.store.kinds.byKind('v1', 'Event')!, 'default').filter((e) => (e as { involvedObject?: { name?: string } }).involvedObject?.name === 'evented') as (ApiObject & { reason: string; count: number; involvedObject: { uid: string } })[]
    expect(events.map((e) => [e.reason, e.count]).sort()).toEqual([
      ['FailedScheduling', 2],
      ['Scheduled', 1],
    ])
    expect(events[0]!.involvedObject.uid).toBe(pod.metadata.uid)
    expect(recorder.dropped).toBe(0)
  })

  it('counts occurrences that arrive together, and combines many different messages for one reason into one Event', async () => {
    const pod = await createPod('busy')
    const recorder = new EventRecorder({ store: peer.state.store, submitter: peer.submitter, source: { component: 'test', host: 'control' }, nowIso: () => new Date().toISOString() })
    await Promise.all(Array.from({ length: 5 }, () => recorder.record(pod, 'Warning', 'BackOff', 'Back-off restarting failed container')))
    await Promise.all(Array.from({ length: 30 }, (_, k) => recorder.record(pod, 'Normal', 'Pulled', `Pulled image nginx:${k}`)))
    type EventView = ApiObject & { reason: string; count: number; message: string; involvedObject: { name: string } }
    const events = (peer.state.store.list(peer.state.store.kinds.byKind('v1', 'Event')!, 'default') as EventView[]).filter((e) => e.involvedObject.name === 'busy')
    expect(events.filter((e) => e.reason === 'BackOff').map((e) => e.count)).toEqual([5])
    const pulled = events.filter((e) => e.reason === 'Pulled')
    // Ten messages stand on their own; the other twenty share one Event.
    expect(pulled).toHaveLength(11)
    expect(pulled.reduce((sum, e) => sum + e.count, 0)).toBe(30)
    const combined = pulled.filter((e) => e.message.startsWith('(combined from similar events): '))
    expect(combined.map((e) => e.count)).toEqual([20])
    expect(recorder.dropped).toBe(0)
  })

  it('takes as many different Events at once as its bound says, and drops only past it', async () => {
    const pods = await Promise.all(Array.from({ length: 12 }, (_, k) => createPod(`many-${k}`)))
    const recorder = new EventRecorder({ store: peer.state.store, submitter: peer.submitter, source: { component: 'test', host: 'control' }, nowIso: () => new Date().toISOString(), pendingMax: 10 })
    await Promise.all(pods.map((pod) => recorder.record(pod, 'Normal', 'Scheduled', `Successfully assigned default/${pod.metadata.name} to control`)))
    expect(recorder.dropped).toBe(2)
    const told = peer.state.store.list(peer.state.store.kinds.byKind('v1', 'Event')!, 'default').filter((e) => (e as { involvedObject?: { name?: string } }).involvedObject?.name?.startsWith('many-'))
    expect(told).toHaveLength(10)
  })
})
