// Gossip-based health and failure detection (SWIM-style). Every peer
// publishes its health on gossipsub about twice a second; a peer not heard
// from for `suspectAfterMs` becomes suspect and is probed (a direct ping, then
// up to `indirectProbes` other peers ping it for us); only if all of those
// fail is it dead. A closed libp2p connection triggers the probe at once, so a
// killed peer is dead within tens of milliseconds rather than seconds.
import type { GossipsubMessage, SubscriptionChangeData } from '@libp2p/gossipsub'
import type { PeerId } from '@libp2p/interface'
import { FailureDetector, type MemberSnapshot, type MemberState } from './failure-detector.js'
import type { PeerHost } from './host.js'
import { decodeHealth, encodeHealth, type LocalHealth, type PeerHealth } from './health.js'
import { isPeerId, parsePeerId, pickRandom, Prober } from './probe.js'

export type { MemberState } from './failure-detector.js'
export { decodeHealth, encodeHealth, type LocalHealth, type PeerHealth, type PeerLoad, type RaftRole, type Resources } from './health.js'
export { InvalidPeerIdError, probeProtocol } from './probe.js'

export const healthTopic = 'shoal/health/1'

/** How often silence timers are checked and due probes started. */
const checkIntervalMs = 100
/** Suspect peers probed at once; the rest wait for a later check. */
const maxConcurrentProbeRounds = 8
/** Retry delay when a publish missed a known subscriber (its stream was not open yet). */
const catchUpRetryMs = 50
/** Catch-up republishes allowed after each new subscriber, so a peer that never opens its stream costs little. */
const maxCatchUpRepublishes = 10
/** Peers tracked at most; reports from more are ignored. */
const maxTrackedPeers = 1024






export type MemberView = MemberSnapshot<PeerHealth>

export class GossipOptionsError extends Error {
  override readonly name = 'GossipOptionsError'
}

/** Fired on every state change, including a peer's first appearance (`previous` null). */
export class MemberChangeEvent extends Event {
  constructor(
    readonly view: MemberView,
    readonly previous: MemberState | null,
  ) {
    super('member-change')
  }
}

export interface GossipMembershipEvents {
  'member-change': MemberChangeEvent
}

export interface GossipMembershipOptions {
  host: PeerHost
  /** Called before every publish; `peerId` is replaced by the host's own, which signs the message. */
  localHealth: () => LocalHealth
  publishIntervalMs?: number
  suspectAfterMs?: number
  probeTimeoutMs?: number
  indirectProbes?: number
  /** Between probe rounds of a suspect that still answers pings. */
  reprobeIntervalMs?: number
  /** A monotonic clock in milliseconds. */
  now?: () => number
}

type ListenOptions = Parameters<EventTarget['addEventListener']>[2]
type UnlistenOptions = Parameters<EventTarget['removeEventListener']>[2]
type AnyListener = Parameters<EventTarget['addEventListener']>[1]

// Typed overloads for the events above, merged into the class.
export interface GossipMembership {
  addEventListener<K extends keyof GossipMembershipEvents>(type: K, listener: (event: GossipMembershipEvents[K]) => void, options?: ListenOptions): void
  addEventListener(type: string, listener: AnyListener, options?: ListenOptions): void
  removeEventListener<K extends keyof GossipMembershipEvents>(type: K, listener: (event: GossipMembershipEvents[K]) => void, options?: UnlistenOptions): void
  removeEventListener(type: string, listener: AnyListener, options?: UnlistenOptions): void
}

export class GossipMembership extends EventTarget {
  private readonly host: PeerHost
  private readonly localHealth: () => LocalHealth
  private readonly publishIntervalMs: number
  private readonly probeTimeoutMs: number
  private readonly indirectProbes: number
  private readonly selfId: string
  private readonly detector: FailureDetector<PeerHealth>
  private readonly prober: Prober
  private readonly probeRounds = new Set<Promise<void>>()
  private stopping = new AbortController()
  private running = false
  private paused = false
  /** Counters for the cluster view and diagnosis. */
  readonly stats = { published: 0, publishFailures: 0, received: 0, receivedDirect: 0 }
  private publishing = false
  private publishAgain = false
  private catchUpRepublishesLeft = 0
  private incarnation = 0
  private seq = 0
  private intervals: NodeJS.Timeout[] = []
  private publishSoonTimer: NodeJS.Timeout | null = null

  constructor(options: GossipMembershipOptions) {
    super()
    this.host = options.host
    this.localHealth = options.localHealth
    this.publishIntervalMs = positive('publishIntervalMs', options.publishIntervalMs ?? 500)
    this.probeTimeoutMs = positive('probeTimeoutMs', options.probeTimeoutMs ?? 500)
    this.indirectProbes = options.indirectProbes ?? 2
    if (!(Number.isInteger(this.indirectProbes) && this.indirectProbes >= 0)) throw new GossipOptionsError(`indirectProbes must be a whole number ≥ 0, not ${this.indirectProbes}`)
    this.selfId = this.host.peerId.toString()
    this.prober = new Prober(this.host)
    this.detector = new FailureDetector<PeerHealth>({
      suspectAfterMs: positive('suspectAfterMs', options.suspectAfterMs ?? 1500),
      reprobeIntervalMs: positive('reprobeIntervalMs', options.reprobeIntervalMs ?? 1000),
      maxMembers: maxTrackedPeers,
      now: options.now ?? (() => performance.now()),
      onChange: (view, previous) => this.dispatchEvent(new MemberChangeEvent(view, previous)),
    })
  }

  async start(): Promise<void> {
    if (this.running) return
    this.running = true
    this.stopping = new AbortController()
    // Wall clock, not `now`: it must grow across process restarts.
    if (this.incarnation === 0) this.incarnation = Date.now()
    const pubsub = this.host.services.pubsub
    pubsub.addEventListener('gossipsub:message', this.onMessage)
    pubsub.addEventListener('subscription-change', this.onSubscriptionChange)
    this.host.addEventListener('peer:disconnect', this.onDisconnect)
    pubsub.subscribe(healthTopic)
    await this.prober.start()
    this.intervals = [setInterval(() => void this.publish(), this.publishIntervalMs), setInterval(() => this.checkMembers(), checkIntervalMs)]
    void this.publish()
  }

  async stop(): Promise<void> {
    if (!this.running) return
    this.running = false
    for (const timer of [...this.intervals, this.publishSoonTimer]) if (timer !== null) clearTimeout(timer)
    this.publishSoonTimer = null
    const pubsub = this.host.services.pubsub
    pubsub.removeEventListener('gossipsub:message', this.onMessage)
    pubsub.removeEventListener('subscription-change', this.onSubscriptionChange)
    this.host.removeEventListener('peer:disconnect', this.onDisconnect)
    this.stopping.abort()
    // The host may already be stopped, which has unsubscribed and unregistered everything.
    try {
      pubsub.unsubscribe(healthTopic)
    } catch {}
    await this.prober.stop().catch(() => {})
    await Promise.allSettled([...this.probeRounds])
  }

  members(): MemberView[] {
    return this.detector.members()
  }

  member(peerId: string): MemberView | null {
    return this.detector.member(peerId)
  }

  /** Track peers learned elsewhere (e.g. the Raft configuration): suspect and probed until they report. */
  track(peerIds: Iterable<string>): void {
    const fresh = [...peerIds].filter((peerId) => peerId !== this.selfId)
    for (const peerId of fresh) parsePeerId(peerId)
    for (const peerId of fresh) this.detector.track(peerId)
    this.checkMembers()
  }

  /** Record a graceful departure: the peer is `left` and no longer probed. */
  markLeft(peerId: string): void {
    parsePeerId(peerId)
    if (peerId !== this.selfId) this.detector.markLeft(peerId)
  }

  /** Drop a peer from the table altogether; true if it was there. */
  forget(peerId: string): boolean {
    return this.detector.forget(peerId)
  }

  /** For tests and maintenance: stop publishing (the peer still answers probes), as a hung agent would. */
  pausePublishing(): void {
    this.paused = true
  }

  resumePublishing(): void {
    this.paused = false
    void this.publish()
  }

  /** At most one publish in flight; a request meanwhile is remembered and sent right after. */
  private async publish(): Promise<void> {
    if (this.publishing) {
      this.publishAgain = true
      return
    }
    this.publishing = true
    try {
      do {
        this.publishAgain = false
        if (!this.running || this.paused) return
        await this.publishOnce()
      } while (this.publishAgain)
    } finally {
      this.publishing = false
    }
  }

  private async publishOnce(): Promise<void> {
    const pubsub = this.host.services.pubsub
    try {
      const report: PeerHealth = { ...this.localHealth(), peerId: this.selfId, incarnation: this.incarnation, seq: ++this.seq }
      const { recipients } = await pubsub.publish(healthTopic, encodeHealth(report))
      this.stats.published++
      // gossipsub learns a subscription before its own stream to that peer is
      // open, and sends nothing to it until then; try again shortly.
      if (recipients.length < pubsub.getSubscribers(healthTopic).length && this.catchUpRepublishesLeft > 0) {
        this.catchUpRepublishesLeft -= 1
        this.publishSoon(catchUpRetryMs)
      }
    } catch {
      this.stats.publishFailures++
      // A throwing localHealth or a stopping host: skip this round. Others then
      // see silence, which is the honest signal; the next interval retries.
    }
  }

  /** Coalesce the republishes asked for meanwhile into one. */
  private publishSoon(delayMs: number): void {
    if (this.publishSoonTimer !== null || !this.running) return
    this.publishSoonTimer = setTimeout(() => {
      this.publishSoonTimer = null
      void this.publish()
    }, delayMs)
  }

  private checkMembers(): void {
    if (!this.running) return
    for (const peerId of this.detector.tick()) {
      if (this.probeRounds.size >= maxConcurrentProbeRounds) break
      const urgent = this.detector.probeStarted(peerId)
      const round: Promise<void> = this.probeRound(peerId, urgent).finally(() => this.probeRounds.delete(round))
      this.probeRounds.add(round)
    }
  }

  /**
   * Direct ping first, helpers only if it fails (SWIM). When the connection
   * has just closed, that is strong evidence already: ask the helpers at the
   * same time, so a killed peer's verdict does not wait out our ping timeout.
   */
  private async probeRound(peerId: string, urgent: boolean): Promise<void> {
    const stopping = this.stopping.signal
    const roundDone = new AbortController()
    try {
      const target = parsePeerId(peerId)
      const askHelpers = () => this.prober.probeIndirectly({
        helpers: pickRandom(this.detector.alivePeers(peerId), this.indirectProbes).map(parsePeerId),
        target,
        pingTimeoutMs: this.probeTimeoutMs,
        // A helper may have to dial the target, then answer us.
        replyTimeoutMs: 2 * this.probeTimeoutMs,
        signal: AbortSignal.any([stopping, roundDone.signal]),
      })
      const early = urgent ? askHelpers() : null
      let reachable = await this.prober.ping(target, this.probeTimeoutMs, stopping)
      if (!reachable && !stopping.aborted) {
        this.detector.directProbeFailed(peerId)
        reachable = await (early ?? askHelpers())
      }
      // Stopping aborts the pings; that says nothing about the peer.
      if (stopping.aborted) this.detector.probeCancelled(peerId)
      else this.detector.probeFinished(peerId, reachable)
    } catch {
      // Not a verdict on the peer either (ids are checked on entry, so this should not happen).
      this.detector.probeCancelled(peerId)
    } finally {
      roundDone.abort()
    }
  }

  private readonly onMessage = (event: CustomEvent<GossipsubMessage>): void => {
    const { msg: message, propagationSource } = event.detail
    if (message.topic !== healthTopic) return
    const health = decodeHealth(message.data)
    if (health === null || health.peerId === this.selfId) return
    // A signed message names its origin; a report claiming another peer's identity is dropped.
    if (message.type === 'signed' ? message.from.toString() !== health.peerId : !isPeerId(health.peerId)) return
    // Proof of life only if it came from the sender over a connection still open: a
    // copy forwarded by another peer, or one processed after the connection closed,
    // may have been sent before the sender died.
    const direct = propagationSource.toString() === health.peerId && this.host.getConnections(propagationSource).length > 0
    this.stats.received++
    if (direct) this.stats.receivedDirect++
    this.detector.heard(health, direct)
  }

  private readonly onSubscriptionChange = (event: CustomEvent<SubscriptionChangeData>): void => {
    // A publish sent before a peer's subscription is known never reaches it;
    // answer a new subscriber at once rather than one interval later.
    if (!event.detail.subscriptions.some((s) => s.topic === healthTopic && s.subscribe)) return
    this.catchUpRepublishesLeft = maxCatchUpRepublishes
    this.publishSoon(0)
  }

  private readonly onDisconnect = (event: CustomEvent<PeerId>): void => {
    this.detector.connectionLost(event.detail.toString())
    this.checkMembers()
  }
}

function positive(option: string, value: number): number {
  if (!(value > 0) || !Number.isFinite(value)) throw new GossipOptionsError(`${option} must be a positive number of milliseconds, not ${value}`)
  return value
}
