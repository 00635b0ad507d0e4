// The leader's control loops, in one list: the peer runs them through a
// LeaderLoop. A new controller is one more entry here.
import type { Submitter } from '../api/submit.js'
import type { KindRegistry } from '../kinds/kind.js'
import type { ObjectStore } from '../store/object-store.js'
import type { EventRecorder } from './events.js'
import type { Controller } from './leader-loop.js'
import { NodeReadyEvents } from '../controllers/node-events.js'
import { PodEviction, defaultPodEvictionTimeoutMs } from '../controllers/pod-eviction.js'
import { ReplicationManager, replicaSets } from '../controllers/replication-controller.js'
import { EndpointsController } from '../controllers/endpoints.js'
import { DeploymentController } from '../controllers/deployment-controller.js'
import { Scheduler } from '../scheduler/scheduler.js'

/** What every controller may use: the replicated store to read, the submitter to write, events to tell. */
export interface ControlContext {
  store: ObjectStore
  kinds: KindRegistry
  submitter: Submitter
  events: EventRecorder
  nowMs: () => number
  nowIso: () => string
  /** How long a Node may be not Ready before its pods are deleted (`--pod-eviction-timeout`); 5 s when absent. */
  podEvictionTimeoutMs?: number
}

export function leaderControllers(ctx: ControlContext): Controller[] {
  return [
    new NodeReadyEvents(ctx),
    new PodEviction(ctx, ctx.podEvictionTimeoutMs ?? defaultPodEvictionTimeoutMs),
    new ReplicationManager(ctx),
    new ReplicationManager(ctx, replicaSets),
    new DeploymentController(ctx),
    new EndpointsController(ctx),
    new Scheduler(ctx),
  ]
}
