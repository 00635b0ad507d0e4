// Gossip membership over real libp2p hosts on loopback, all in one process.
// Stopping a host closes its sockets the way a SIGKILL would (the kernel
// resets the connections), so it stands in for a killed peer.
import { generateKeyPair } from '@libp2p/crypto/keys'
import type { PrivateKey } from '@libp2p/interface'
import { afterEach, describe, expect, it, vi } from 'vitest'
import { FailureDetector, type MemberState } from '../../net/failure-detector.js'
import { decodeHealth, encodeHealth, GossipMembership, type LocalHealth, type MemberChangeEvent, type PeerHealth } from '../../net/gossip.js'
import { createPeerHost, type PeerHost } from '../../net/host.js'
import { generateClusterSecret, peerIdOf } from '../../net/identity.js'

interface Peer {
  secret: string
  key: PrivateKey
  id: string
  host: PeerHost
  membership: GossipMembership
  health: LocalHealth
}

/** Detection must beat this, per the requirement; measured, not just waited for. */
const detectionBudgetMs = 2000

const started: Array<{ host: PeerHost; membership: GossipMembership }> = []

afterEach(async () => {
  const peers = started.splice(0)
  await Promise.allSettled(peers.map(async ({ host, membership }) => {
    await membership.stop()
    await host.stop()
  }))
})

function healthFor(index: number, peerId: string, addresses: string[] = []): LocalHealth {
  return {
    name: `peer-${index}`,
    peerId,
    addresses,
    apiAddress: index % 2 === 0 ? `http://127.0.0.1:${6440 + index}` : null,
    capacity: { cpuMillis: 4000 + index, memoryBytes: 8 * 2 ** 30 },
    allocatable: { cpuMillis: 3500 + index, memoryBytes: 7 * 2 ** 30 },
    load: { cpuPercent: 10 + index, memoryUsedBytes: 2 ** 30 + index, loadAverage1m: 0.5 },
    podCount: index,
    runtime: 'containerd',
    version: '0.1.0',
    raftRole: index === 0 ? 'leader' : 'voter',
  }
}

type MembershipTuning = Omit<ConstructorParameters<typeof GossipMembership>[0], 'host' | 'localHealth'>

async function startPeer(secret: string, index: number, key?: PrivateKey, tuning: MembershipTuning = {}): Promise<Peer> {
  const privateKey = key ?? (await generateKeyPair('Ed25519'))
  const host = await createPeerHost({ privateKey, clusterSecret: secret, listen: ['/ip4/127.0.0.1/tcp/0'] })
  const health = healthFor(index, host.peerId.toString(), host.getMultiaddrs().map((addr) => addr.toString()))
  const membership = new GossipMembership({ host, localHealth: () => health, ...tuning })
  started.push({ host, membership })
  await membership.start()
  return { secret, key: privateKey, id: host.peerId.toString(), host, membership, health }
}

function firstAddress(host: PeerHost) {
  const addr = host.getMultiaddrs()[0]
  if (addr === undefined) throw new Error('host has no listen address')
  return addr
}

async function connectAll(peers: Peer[]): Promise<void> {
  const dials: Promise<unknown>[] = []
  for (const [i, a] of peers.entries()) {
    for (const b of peers.slice(i + 1)) dials.push(a.host.dial(firstAddress(b.host)))
  }
  await Promise.all(dials)
}

async function startCluster(size: number, tuning: (index: number) => MembershipTuning = () => ({})): Promise<Peer[]> {
  const secret = generateClusterSecret()
  const peers = await Promise.all(Array.from({ length: size }, (_, index) => startPeer(secret, index, undefined, tuning(index))))
  await connectAll(peers)
  return peers
}

async function waitFor(condition: () => boolean, timeoutMs: number, what: string): Promise<number> {
  const t0 = performance.now()
  while (!condition()) {
    if (performance.now() - t0 > timeoutMs) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`)
    await new Promise((resolve) => setTimeout(resolve, 10))
  }
  return performance.now() - t0
}

function stateOf(observer: Peer, subject: Peer): MemberState | undefined {
  return observer.membership.member(subject.id)?.state
}

function everyoneSees(observers: Peer[], subject: Peer, state: MemberState): boolean {
  return observers.every((observer) => observer === subject || stateOf(observer, subject) === state)
}

function allAliveWithHealth(peers: Peer[]): boolean {
  return peers.every((observer) =>
    peers.every((subject) => {
      if (observer === subject) return true
      const view = observer.membership.member(subject.id)
      return view?.state === 'alive' && view.health?.name === subject.health.name
    }),
  )
}

/**
 * Wait until everyone sees everyone alive. Pairs whose connection dropped are
 * dialled again: on an overloaded machine libp2p's own keep-alive pings can
 * time out and close a connection, and in production the Raft transport redials.
 */
async function waitForCluster(peers: Peer[], timeoutMs: number): Promise<number> {
  let dialledAtMs = performance.now()
  return waitFor(() => {
    if (performance.now() - dialledAtMs > 500) {
      dialledAtMs = performance.now()
      for (const [i, a] of peers.entries()) {
        for (const b of peers.slice(i + 1)) {
          if (a.host.getConnections(b.host.peerId).length === 0) a.host.dial(firstAddress(b.host)).catch(() => {})
        }
      }
    }
    return allAliveWithHealth(peers)
  }, timeoutMs, 'everyone alive')
}

/** Record, per observer, when it first saw `subject` enter `state`. */
function whenSeen(observers: Peer[], subject: Peer, state: MemberState): Map<string, number> {
  const seenAt = new Map<string, number>()
  for (const observer of observers) {
    observer.membership.addEventListener('member-change', (event: MemberChangeEvent) => {
      if (event.view.peerId === subject.id && event.view.state === state && !seenAt.has(observer.id)) seenAt.set(observer.id, performance.now())
    })
  }
  return seenAt
}

describe('GossipMembership over libp2p', () => {
  it.each([3, 5])('%i peers all see each other alive with their health within 2 s', async (size) => {
    const peers = await startCluster(size)
    const elapsedMs = await waitForCluster(peers, detectionBudgetMs)
    console.info(`${size} peers: all alive ${elapsedMs.toFixed(0)} ms after connecting`)
    for (const observer of peers) {
      const others = peers.filter((peer) => peer !== observer)
      expect(observer.membership.members().map((view) => view.peerId).sort()).toEqual(others.map((peer) => peer.id).sort())
      for (const subject of others) {
        const view = observer.membership.member(subject.id)
        expect(view?.health).toMatchObject({ ...subject.health, incarnation: expect.any(Number), seq: expect.any(Number) })
        expect(view?.lastHeardMs).toBeLessThan(detectionBudgetMs)
      }
    }
  })

  it.each([3, 5])('a stopped host (SIGKILL-equivalent) is dead at every other peer within 2 s (%i peers)', async (size) => {
    const peers = await startCluster(size)
    await waitForCluster(peers, 10_000)
    const [victim, ...survivors] = peers as [Peer, ...Peer[]]
    const deadAt = whenSeen(survivors, victim, 'dead')
    const wronglyDead: string[] = []
    for (const observer of survivors) {
      observer.membership.addEventListener('member-change', (event) => {
        if (event.view.state === 'dead' && event.view.peerId !== victim.id) wronglyDead.push(event.view.peerId)
      })
    }
    const t0 = performance.now()
    await victim.host.stop()
    await waitFor(() => deadAt.size === survivors.length, 10_000, 'every survivor to see the victim dead')
    const detectionMs = Math.max(...[...deadAt.values()].map((t) => t - t0))
    console.info(`${size} peers: stopped host dead everywhere after ${detectionMs.toFixed(0)} ms`)
    expect(detectionMs).toBeLessThan(detectionBudgetMs)
    // No collateral damage: no survivor was taken for dead.
    expect(wronglyDead).toEqual([])
  })

  it('a peer that stops publishing but answers pings is suspect, never dead, and alive once it resumes', async () => {
    const peers = await startCluster(3)
    await waitForCluster(peers, 10_000)
    const [silent, ...others] = peers as [Peer, ...Peer[]]
    const seen: MemberState[] = []
    for (const observer of others) {
      observer.membership.addEventListener('member-change', (event) => {
        if (event.view.peerId === silent.id) seen.push(event.view.state)
      })
    }
    silent.membership.pausePublishing()
    const suspectMs = await waitFor(() => everyoneSees(others, silent, 'suspect'), 10_000, 'the silent peer suspect')
    console.info(`silent peer suspect everywhere after ${suspectMs.toFixed(0)} ms`)
    expect(suspectMs).toBeGreaterThanOrEqual(800) // suspectAfterMs 1500 minus up to one publish interval
    // Several reprobe rounds (reprobeIntervalMs 1000) pass without a verdict of dead.
    await new Promise((resolve) => setTimeout(resolve, 3500))
    expect(everyoneSees(others, silent, 'suspect')).toBe(true)
    silent.membership.resumePublishing()
    await waitFor(() => everyoneSees(others, silent, 'alive'), 5000, 'the peer alive again')
    expect(seen).not.toContain('dead')
    expect(seen).toContain('alive')
  })

  it('a peer we cannot ping but another peer can (via /shoal/probe/1) stays suspect, not dead', async () => {
    const peers = await startCluster(3)
    await waitForCluster(peers, 10_000)
    const [target, cutOff] = peers as [Peer, Peer, Peer]
    // cutOff's own pings of the target fail, as over a broken link; everything else works.
    const ping = cutOff.host.services.ping
    const realPing = ping.ping.bind(ping)
    const cutPings = vi.spyOn(ping, 'ping').mockImplementation(async (peer, options) => {
      if (peer.toString() === target.id) throw new Error('link cut')
      return realPing(peer, options)
    })
    const deadAt = whenSeen([cutOff], target, 'dead')
    target.membership.pausePublishing()
    await waitFor(() => stateOf(cutOff, target) === 'suspect', 10_000, 'the target suspect')
    await new Promise((resolve) => setTimeout(resolve, 3000))
    expect(stateOf(cutOff, target)).toBe('suspect')
    expect(deadAt.size).toBe(0)
    // Direct pings failed every round, so only the helper's acks kept it from being declared dead.
    expect(cutPings.mock.calls.filter(([peer]) => peer.toString() === target.id).length).toBeGreaterThanOrEqual(2)
  })

  it('a host restarted with the same key is alive again', async () => {
    const peers = await startCluster(3)
    await waitForCluster(peers, 10_000)
    const [victim, ...survivors] = peers as [Peer, ...Peer[]]
    const firstIncarnation = survivors[0]?.membership.member(victim.id)?.health?.incarnation
    await victim.host.stop()
    await victim.membership.stop()
    await waitFor(() => everyoneSees(survivors, victim, 'dead'), 10_000, 'the victim dead')
    await new Promise((resolve) => setTimeout(resolve, 5)) // a later wall-clock incarnation
    const restarted = await startPeer(victim.secret, 0, victim.key)
    expect(restarted.id).toBe(victim.id)
    await Promise.all(survivors.map((peer) => restarted.host.dial(firstAddress(peer.host))))
    await waitForCluster([restarted, ...survivors], 10_000)
    const incarnation = survivors[0]?.membership.member(victim.id)?.health?.incarnation
    expect(incarnation).toBeGreaterThan(firstIncarnation ?? Infinity)
  })

  it('markLeft makes a peer left wherever it is called, and it is no longer probed there', async () => {
    // The bystander asks nobody to probe for it, so a and b never ping the leaver on its behalf.
    const peers = await startCluster(4, (index) => (index === 3 ? { indirectProbes: 0 } : {}))
    await waitForCluster(peers, 10_000)
    const [leaver, a, b, bystander] = peers as [Peer, Peer, Peer, Peer]
    const pingsOfLeaver = [a, b].map((peer) => {
      const spy = vi.spyOn(peer.host.services.ping, 'ping')
      return () => spy.mock.calls.filter(([target]) => target.toString() === leaver.id).length
    })
    a.membership.markLeft(leaver.id)
    b.membership.markLeft(leaver.id)
    expect([stateOf(a, leaver), stateOf(b, leaver)]).toEqual(['left', 'left'])
    // Still publishing: reports from the incarnation that left do not bring it back.
    await new Promise((resolve) => setTimeout(resolve, 1000))
    expect([stateOf(a, leaver), stateOf(b, leaver)]).toEqual(['left', 'left'])
    await leaver.host.stop()
    // The bystander, which was not told, probes and declares it dead; a and b do not.
    await waitFor(() => stateOf(bystander, leaver) === 'dead', 10_000, 'the bystander to see it dead')
    await new Promise((resolve) => setTimeout(resolve, 2500))
    expect([stateOf(a, leaver), stateOf(b, leaver)]).toEqual(['left', 'left'])
    expect(pingsOfLeaver.map((count) => count())).toEqual([0, 0])
  })

  it('tracked peers start suspect: a reachable silent host stays suspect, an absent one is dead', async () => {
    const peers = await startCluster(2)
    await waitForCluster(peers, 10_000)
    const [observer] = peers as [Peer, Peer]
    // A cluster host that runs no membership: answers pings, never reports.
    const quietHost = await createPeerHost({ privateKey: await generateKeyPair('Ed25519'), clusterSecret: observer.secret, listen: ['/ip4/127.0.0.1/tcp/0'] })
    started.push({ host: quietHost, membership: new GossipMembership({ host: quietHost, localHealth: () => observer.health }) })
    await observer.host.dial(firstAddress(quietHost))
    const absentId = peerIdOf(await generateKeyPair('Ed25519')) // never started
    const quietId = quietHost.peerId.toString()
    const changes: Array<[string, MemberState | null, MemberState]> = []
    observer.membership.addEventListener('member-change', (event) => changes.push([event.view.peerId, event.previous, event.view.state]))
    observer.membership.track([quietId, absentId, observer.id])
    expect(observer.membership.member(observer.id)).toBeNull()
    expect(changes.slice(0, 2)).toEqual([[quietId, null, 'suspect'], [absentId, null, 'suspect']])
    await waitFor(() => observer.membership.member(absentId)?.state === 'dead', 5000, 'the absent peer dead')
    await new Promise((resolve) => setTimeout(resolve, 2500))
    expect(observer.membership.member(quietId)?.state).toBe('suspect')
    expect(() => observer.membership.track(['not-a-peer-id'])).toThrow(expect.objectContaining({ name: 'InvalidPeerIdError' }))
  })
})

describe('FailureDetector', () => {
  function report(seq: number, incarnation = 1): PeerHealth {
    return { ...healthFor(1, 'p1'), incarnation, seq }
  }

  function detector() {
    let t = 0
    const changes: Array<[MemberState | null, MemberState]> = []
    const fd = new FailureDetector<PeerHealth>({
      suspectAfterMs: 1500,
      reprobeIntervalMs: 1000,
      maxMembers: 2,
      now: () => t,
      onChange: (view, previous) => changes.push([previous, view.state]),
    })
    return { fd, changes, advance: (ms: number) => (t += ms) }
  }

  it('ignores stale and duplicate reports, accepts a restarted incarnation', () => {
    const { fd } = detector()
    expect(fd.heard(report(5))).toBe(true)
    expect(fd.heard(report(5))).toBe(false)
    expect(fd.heard(report(4))).toBe(false)
    expect(fd.heard(report(0, 2))).toBe(true)
    expect(fd.heard(report(9, 1))).toBe(false)
    expect(fd.member('p1')?.health?.seq).toBe(0)
  })

  it('silence makes a peer suspect; a failed round dead; a new report alive', () => {
    const { fd, changes, advance } = detector()
    fd.heard(report(1))
    advance(1499)
    expect(fd.tick()).toEqual([])
    advance(1)
    expect(fd.tick()).toEqual(['p1'])
    fd.probeStarted('p1')
    expect(fd.tick()).toEqual([]) // one round in flight per peer
    fd.probeFinished('p1', true)
    expect(fd.member('p1')?.state).toBe('suspect')
    advance(1000)
    expect(fd.tick()).toEqual(['p1'])
    fd.probeStarted('p1')
    fd.probeFinished('p1', false)
    advance(250)
    expect(fd.member('p1')).toMatchObject({ state: 'dead', stateSinceMs: 250, lastHeardMs: 2750 })
    fd.heard(report(2))
    expect(changes).toEqual([[null, 'alive'], ['alive', 'suspect'], ['suspect', 'dead'], ['dead', 'alive']])
  })

  it('a report during a probe round outranks its failure; a lost connection is probed at once', () => {
    const { fd, advance } = detector()
    fd.heard(report(1))
    fd.connectionLost('p1')
    expect(fd.tick()).toEqual(['p1'])
    expect(fd.probeStarted('p1')).toBe(true) // urgent: helpers are asked at once
    fd.directProbeFailed('p1')
    expect(fd.member('p1')?.state).toBe('suspect')
    advance(10)
    fd.heard(report(2))
    fd.probeFinished('p1', false)
    expect(fd.member('p1')?.state).toBe('alive')
  })

  it('a relayed report cannot overturn a failed probe or revive the dead until a probe confirms it', () => {
    const { fd, changes } = detector()
    const probeRound = (reachable: boolean) => {
      expect(fd.tick()).toEqual(['p1'])
      fd.probeStarted('p1')
      if (!reachable) fd.directProbeFailed('p1')
      fd.probeFinished('p1', reachable)
    }
    fd.heard(report(1))
    fd.connectionLost('p1')
    fd.tick()
    fd.probeStarted('p1')
    // A copy of a report sent just before it died arrives late, forwarded by another peer.
    expect(fd.heard(report(2), false)).toBe(true)
    fd.directProbeFailed('p1')
    fd.probeFinished('p1', false)
    expect(fd.member('p1')).toMatchObject({ state: 'dead', health: { seq: 1 } })
    fd.heard(report(3), false)
    expect(fd.member('p1')?.state).toBe('dead')
    probeRound(false) // still unreachable: the copy was stale
    expect(fd.member('p1')).toMatchObject({ state: 'dead', health: { seq: 1 } })
    expect(fd.tick()).toEqual([]) // the dead are not probed without a reason
    fd.heard(report(4), false) // the partition healed: relayed, and this time the probe answers
    probeRound(true)
    expect(fd.member('p1')).toMatchObject({ state: 'alive', health: { seq: 4 } })
    expect(changes).toEqual([[null, 'alive'], ['alive', 'suspect'], ['suspect', 'dead'], ['dead', 'alive']])
  })

  it('caps the member table', () => {
    const { fd } = detector()
    fd.track('a')
    fd.track('b')
    expect(fd.heard(report(1))).toBe(false)
    expect(fd.members().map((view) => view.peerId)).toEqual(['a', 'b'])
  })
})

describe('health codec', () => {
  it('round-trips a report and rejects malformed ones', () => {
    const health: PeerHealth = { ...healthFor(2, 'x', ['/ip4/10.0.0.2/tcp/7946']), incarnation: 7, seq: 3 }
    expect(decodeHealth(encodeHealth(health))).toEqual(health)
    const encoder = new TextEncoder()
    expect(decodeHealth(encoder.encode('not json'))).toBeNull()
    expect(decodeHealth(encoder.encode(JSON.stringify({ ...health, raftRole: 'king' })))).toBeNull()
    expect(decodeHealth(encoder.encode(JSON.stringify({ ...health, load: { cpuPercent: 'high' } })))).toBeNull()
    expect(decodeHealth(encoder.encode(JSON.stringify({ ...health, extra: 1 })))).toEqual(health)
  })
})
