// The leader's control loops, in one list: the peer runs them through a
// LeaderLoop. A new controller is one more entry here.
import type { Submitter } from '../api/submit.js'
import type { KindRegistry } from '../kinds/kind.js'
import type { ObjectStore } from '../store/object-store.js'
import type { EventRecorder } from './events.js'
import type { Controller } from './leader-loop.js'

/** What every controller may use: the replicated store to read, the submitter to write, events to tell. */
export interface ControlContext {
  store: ObjectStore
  kinds: KindRegistry
  submitter: Submitter
  events: EventRecorder
  nowMs: () => number
  nowIso: () => string
}

export function leaderControllers(ctx: ControlContext): Controller[] {
  void ctx
  return []
}
