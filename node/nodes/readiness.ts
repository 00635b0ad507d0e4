// Whether a peer's Node is Ready, decided from what gossip says about the
// peer, and the conditions that follow from it. Pure: the node lifecycle
// controller feeds it the leader's view and writes what comes out.
import type { MemberState } from '../../net/gossip.js'

export type ConditionStatus = 'True' | 'False' | 'Unknown'

export interface NodeCondition {
  type: string
  status: ConditionStatus
  lastHeartbeatTime: string
  lastTransitionTime: string
  reason: string
  message: string
}

/** What the deciding leader knows about one peer. */
export interface PeerView {
  /** The Node is the deciding leader's own: it is running, so it is alive. */
  isSelf: boolean
  /** The leader's gossip view of the peer, or null when gossip does not track it yet. */
  member: { state: MemberState; everHeard: boolean; stateSinceMs: number } | null
  /** How long the deciding peer has been leader. */
  leaderForMs: number
}

export type ReadyVerdict = { keep: true } | { keep: false; status: ConditionStatus; reason: string; message: string }

export const readinessTimings = {
  /** After becoming leader, a peer not heard from yet keeps its stored condition this long (no flapping on a fresh gossip table). */
  leaderGraceMs: 5_000,
  /** A peer that answers probes but publishes nothing stays suspect; after this long (Kubernetes' node-monitor-grace-period) it is Unknown. */
  suspectUnknownAfterMs: 40_000,
  /** lastHeartbeatTime of a Ready peer is rewritten at most this often, so Raft is not written every second. */
  heartbeatEveryMs: 40_000,
}

export type ReadinessTimings = typeof readinessTimings

const ready: ReadyVerdict = { keep: false, status: 'True', reason: 'ShoalPeerReady', message: 'peer is alive' }
const keep: ReadyVerdict = { keep: true }

function unknown(message: string): ReadyVerdict {
  return { keep: false, status: 'Unknown', reason: 'NodeStatusUnknown', message }
}

/**
 * The Ready verdict for one peer. Gossip's health report has no notion of a
 * peer declaring itself unhealthy yet, so the verdict is True or Unknown;
 * False is left for the agent's checks (issue 6).
 */
export function decideReady(view: PeerView, timings: ReadinessTimings = readinessTimings): ReadyVerdict {
  const { member } = view
  if (view.isSelf) return ready
  if (member === null) return keep
  if (member.state === 'alive') return ready
  if (!member.everHeard && view.leaderForMs < timings.leaderGraceMs) return keep
  switch (member.state) {
    case 'dead':
      return unknown('peer stopped gossiping')
    case 'left':
      return unknown('peer is leaving the cluster')
    case 'suspect':
      // Suspicion is not a verdict: a probe is under way. Only a long one is.
      return member.stateSinceMs >= timings.suspectUnknownAfterMs ? unknown('peer stopped gossiping') : keep
  }
}

/** Kubernetes writes times to the second: 2026-01-02T03:04:05Z. */
export function isoSeconds(ms: number): string {
  return new Date(Math.floor(ms / 1000) * 1000).toISOString().replace(/\.000Z$/, 'Z')
}

const pressureConditions: readonly { type: string; reason: string; message: string }[] = [
  { type: 'MemoryPressure', reason: 'KubeletHasSufficientMemory', message: 'peer has sufficient memory available' },
  { type: 'DiskPressure', reason: 'KubeletHasNoDiskPressure', message: 'peer has no disk pressure' },
  { type: 'PIDPressure', reason: 'KubeletHasSufficientPID', message: 'peer has sufficient PID available' },
]
const ownedTypes = new Set(['Ready', ...pressureConditions.map((p) => p.type)])

export interface ConditionClock {
  nowMs: number
  /** When the leader last heard from the peer (wall clock), or null if never. */
  lastHeardAtMs: number | null
}

function neverUpdated(): ReadyVerdict {
  return { keep: false, status: 'Unknown', reason: 'NodeStatusNeverUpdated', message: 'peer has not reported yet' }
}

/**
 * The Ready heartbeat: refreshed on a transition and, while gossip confirms
 * the peer alive, every heartbeatEveryMs; an Unknown peer's is when it was
 * last heard. A kept verdict (no news) keeps it.
 */
function heartbeatOf(previous: NodeCondition | undefined, status: ConditionStatus, confirmed: boolean, clock: ConditionClock, everyMs: number): string {
  const now = isoSeconds(clock.nowMs)
  const transition = previous?.status !== status
  if (!transition && !confirmed) return previous.lastHeartbeatTime
  if (status === 'True') {
    const last = previous === undefined ? NaN : Date.parse(previous.lastHeartbeatTime)
    return transition || !(clock.nowMs - last < everyMs) ? now : previous!.lastHeartbeatTime
  }
  if (!transition) return previous.lastHeartbeatTime
  return clock.lastHeardAtMs !== null ? isoSeconds(clock.lastHeardAtMs) : (previous?.lastHeartbeatTime ?? now)
}

function condition(previous: NodeCondition | undefined, type: string, status: ConditionStatus, reason: string, message: string, heartbeat: string, nowMs: number): NodeCondition {
  const lastTransitionTime = previous !== undefined && previous.status === status ? previous.lastTransitionTime : isoSeconds(nowMs)
  return { type, status, lastHeartbeatTime: heartbeat, lastTransitionTime, reason, message }
}

/**
 * The Node's conditions after `verdict`: MemoryPressure, DiskPressure and
 * PIDPressure (False, or Unknown with Ready) and Ready, followed by any other
 * conditions as they were. Null when nothing would change, so nothing is written.
 */
export function nextConditions(previous: readonly NodeCondition[], verdict: ReadyVerdict, clock: ConditionClock, timings: ReadinessTimings = readinessTimings): NodeCondition[] | null {
  const byType = new Map(previous.map((c) => [c.type, c]))
  const previousReady = byType.get('Ready')
  const target = verdict.keep ? (previousReady === undefined ? neverUpdated() : { keep: false as const, status: previousReady.status, reason: previousReady.reason, message: previousReady.message }) : verdict
  if (target.keep) return null
  const heartbeat = heartbeatOf(previousReady, target.status, !verdict.keep, clock, timings.heartbeatEveryMs)
  const pressureUnknown = target.status === 'Unknown'
  const next: NodeCondition[] = pressureConditions.map((p) =>
    condition(byType.get(p.type), p.type, pressureUnknown ? 'Unknown' : 'False', pressureUnknown ? target.reason : p.reason, pressureUnknown ? target.message : p.message, heartbeat, clock.nowMs),
  )
  next.push(condition(previousReady, 'Ready', target.status, target.reason, target.message, heartbeat, clock.nowMs))
  next.push(...previous.filter((c) => !ownedTypes.has(c.type)))
  const unchanged = next.length === previous.length && next.every((c, k) => sameCondition(c, previous[k]))
  return unchanged ? null : next
}

/** Field by field: stored conditions may come back with their keys in another order. */
function sameCondition(a: NodeCondition, b: NodeCondition | undefined): boolean {
  return b !== undefined && a.type === b.type && a.status === b.status && a.lastHeartbeatTime === b.lastHeartbeatTime && a.lastTransitionTime === b.lastTransitionTime && a.reason === b.reason && a.message === b.message
}
