// Starting the leader's control loops on a peer: the event recorder, the
// controllers and the LeaderLoop that runs them while this peer leads.
import type { RaftDriver } from '../../consensus/driver.js'
import type { Submitter } from '../api/submit.js'
import type { ObjectStore } from '../store/object-store.js'
import { leaderControllers } from './controllers.js'
import { EventRecorder } from './events.js'
import { LeaderLoop } from './leader-loop.js'

export interface LeaderControlOptions {
  driver: RaftDriver
  store: ObjectStore
  submitter: Submitter
  peerName: string
  podEvictionTimeoutMs: number
}

export function startLeaderControl(o: LeaderControlOptions): LeaderLoop {
  const nowIso = (): string => new Date().toISOString()
  const events = new EventRecorder({ store: o.store, submitter: o.submitter, source: { component: 'shoal-controller', host: o.peerName }, nowIso })
  const controllers = leaderControllers({ store: o.store, kinds: o.store.kinds, submitter: o.submitter, events, nowMs: () => Date.now(), nowIso, podEvictionTimeoutMs: o.podEvictionTimeoutMs })
  const loop = new LeaderLoop({
    controllers,
    store: o.store,
    leaderTerm: () => (o.driver.node.role === 'leader' ? o.driver.node.term : null),
    onError: (name, err) => console.error(`shoal: ${name}: ${err.message}`),
    caughtUp: async () => {
      await o.driver.readIndex()
    },
  })
  loop.start()
  return loop
}
