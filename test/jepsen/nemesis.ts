// The nemesis: until a deadline, it injects a fault, holds it a few seconds,
// heals it and rests, choosing by a seeded schedule among SIGKILL and restart
// of a random peer or of the leader, SIGSTOP/SIGCONT, a partition isolating a
// random minority or one holding the leader, a flapping link, packet loss
// (iptables `statistic` DROP) and delay (relay.ts: the kernel has no netem).
// Sometimes two faults of different families run at once. Every start and
// stop goes into the history with the peers it affects.
import type { JepsenCluster, JepsenPeer } from './cluster.js'
import type { HistoryWriter } from './history.js'
import { Random } from './random.js'
import { DelayedLinks } from './relay.js'

export const faultKinds = ['kill', 'kill-leader', 'pause', 'partition-minority', 'partition-leader', 'flap', 'loss', 'delay'] as const
export type FaultKind = (typeof faultKinds)[number]

/** Faults of one family are never combined: two partitions would heal each other, two process faults could take the majority. */
const familyOf: Record<FaultKind, 'process' | 'partition' | 'link'> = {
  kill: 'process', 'kill-leader': 'process', pause: 'process',
  'partition-minority': 'partition', 'partition-leader': 'partition', flap: 'partition',
  loss: 'link', delay: 'link',
}

export interface NemesisOptions {
  /** How long a fault is held, drawn from [min, max] ms. */
  faultMs: [number, number]
  /** Rest between faults, drawn from [min, max] ms. */
  quietMs: [number, number]
  /** Probability that a second fault of another family joins the first. */
  combineProbability: number
  /** Restrict the faults (default: all). */
  kinds?: readonly FaultKind[]
}

export const defaultNemesis: NemesisOptions = { faultMs: [3000, 8000], quietMs: [1500, 4000], combineProbability: 0.3 }

/** How long a restarted peer may take to answer again before the fault is recorded as over anyway. */
const restartWaitMs = 40_000

interface ActiveFault {
  kind: FaultKind
  peers: string[]
  heal: () => Promise<void>
}

export class Nemesis {
  private readonly random: Random
  private readonly delays = new Map<string, DelayedLinks>()
  readonly counts = new Map<FaultKind, number>()

  constructor(
    private readonly cluster: JepsenCluster,
    private readonly history: HistoryWriter,
    private readonly options: NemesisOptions,
    seed: number,
  ) {
    this.random = new Random(seed * 7919 + 17)
  }

  /** Runs fault after fault until `untilMs` (history clock), then heals everything. */
  async run(untilMs: number): Promise<void> {
    const kinds = this.options.kinds ?? faultKinds
    while (this.history.now() < untilMs) {
      await this.sleep(this.random.int(...this.options.quietMs), untilMs)
      if (this.history.now() >= untilMs) break
      const first = this.random.pick(kinds)
      const chosen = [first]
      const others = kinds.filter((k) => familyOf[k] !== familyOf[first])
      if (others.length > 0 && this.random.next() < this.options.combineProbability) chosen.push(this.random.pick(others))
      const active: ActiveFault[] = []
      for (const kind of chosen) {
        const fault = await this.inject(kind)
        if (fault !== null) active.push(fault)
      }
      await this.sleep(this.random.int(...this.options.faultMs), untilMs + this.options.faultMs[1])
      for (const fault of active.reverse()) await this.healAndRecord(fault)
    }
  }

  /** Undoes whatever a crashed round may have left: all peers running, no partition, loss or delay. */
  async healEverything(): Promise<void> {
    await this.cluster.vnet.heal()
    for (const peer of this.cluster.peers) await this.cluster.vnet.setLoss(peer.host, 0).catch(() => undefined)
    for (const links of this.delays.values()) await links.stop()
    await this.cluster.reviveAll()
  }

  private async sleep(ms: number, untilMs: number): Promise<void> {
    const wait = Math.max(0, Math.min(ms, untilMs - this.history.now()))
    await new Promise((r) => setTimeout(r, wait))
  }

  private record(phase: 'start' | 'stop', kind: FaultKind, peers: string[], detail?: string): void {
    this.history.add({ type: 'nemesis', atMs: this.history.now(), phase, fault: kind, peers, ...(detail === undefined ? {} : { detail }) })
  }

  private async healAndRecord(fault: ActiveFault): Promise<void> {
    await fault.heal()
    this.record('stop', fault.kind, fault.peers)
  }

  private up(): JepsenPeer[] {
    return this.cluster.peers.filter((p) => p.state === 'up')
  }

  private async leaderOrRandom(): Promise<JepsenPeer | undefined> {
    const leader = await this.cluster.leader()
    if (leader !== undefined && leader.state === 'up') return leader
    const up = this.up()
    return up.length === 0 ? undefined : this.random.pick(up)
  }

  private async inject(kind: FaultKind): Promise<ActiveFault | null> {
    const fault = await this.build(kind)
    if (fault === null) return null
    this.counts.set(kind, (this.counts.get(kind) ?? 0) + 1)
    return fault
  }

  private async build(kind: FaultKind): Promise<ActiveFault | null> {
    const { cluster, random } = this
    const vnet = cluster.vnet
    switch (kind) {
      case 'kill':
      case 'kill-leader': {
        const victim = kind === 'kill' ? (this.up().length > 0 ? random.pick(this.up()) : undefined) : await this.leaderOrRandom()
        if (victim === undefined) return null
        this.record('start', kind, [victim.name], 'SIGKILL')
        await cluster.kill(victim)
        return { kind, peers: [victim.name], heal: () => this.restart(victim) }
      }
      case 'pause': {
        const victim = random.next() < 0.5 ? await this.leaderOrRandom() : this.up().length > 0 ? random.pick(this.up()) : undefined
        if (victim === undefined) return null
        this.record('start', kind, [victim.name], 'SIGSTOP')
        cluster.pause(victim)
        return { kind, peers: [victim.name], heal: async () => cluster.resume(victim) }
      }
      case 'partition-minority':
      case 'partition-leader': {
        const size = random.int(1, Math.floor((cluster.peers.length - 1) / 2))
        let minority = random.sample(cluster.peers, size)
        if (kind === 'partition-leader') {
          const leader = await cluster.leader()
          if (leader !== undefined && !minority.includes(leader)) minority = [leader, ...minority.slice(1)]
        }
        const majority = cluster.peers.filter((p) => !minority.includes(p))
        const names = minority.map((p) => p.name)
        this.record('start', kind, names, `isolated from ${majority.map((p) => p.name).join(',')}`)
        await vnet.partition(minority.map((p) => p.host), majority.map((p) => p.host))
        return { kind, peers: names, heal: () => vnet.heal() }
      }
      case 'flap': {
        const victim = random.pick(cluster.peers)
        this.record('start', kind, [victim.name], 'link down and up every 0.3-1 s')
        let flapping = true
        const flaps = (async () => {
          while (flapping) {
            await vnet.disconnect(victim.host)
            await new Promise((r) => setTimeout(r, random.int(300, 1000)))
            await vnet.reconnect(victim.host)
            await new Promise((r) => setTimeout(r, random.int(300, 1000)))
          }
        })()
        return { kind, peers: [victim.name], heal: async () => { flapping = false; await flaps } }
      }
      case 'loss': {
        const victims = random.sample(cluster.peers, random.int(2, cluster.peers.length))
        const probability = random.int(5, 30) / 100
        this.record('start', kind, victims.map((p) => p.name), `drop ${probability * 100}% of incoming packets`)
        for (const v of victims) await vnet.setLoss(v.host, probability)
        return { kind, peers: victims.map((p) => p.name), heal: async () => { for (const v of victims) await vnet.setLoss(v.host, 0) } }
      }
      case 'delay': {
        const center = random.next() < 0.5 ? ((await cluster.leader()) ?? random.pick(cluster.peers)) : random.pick(cluster.peers)
        const delayMs = random.int(50, 300)
        const others = cluster.peers.filter((p) => p !== center)
        this.record('start', kind, [center.name], `${delayMs} ms each way on every link of ${center.name}`)
        const links = [this.delayedFrom(center), ...others.map((p) => this.delayedFrom(p))]
        await links[0]!.start(others.map((p) => p.host), delayMs)
        for (const k of others.keys()) await links[k + 1]!.start([center.host], delayMs)
        return { kind, peers: [center.name], heal: async () => { for (const l of links) await l.stop() } }
      }
    }
  }

  private delayedFrom(peer: JepsenPeer): DelayedLinks {
    let links = this.delays.get(peer.name)
    if (links === undefined) {
      links = new DelayedLinks(this.cluster.vnet, peer.host)
      this.delays.set(peer.name, links)
    }
    return links
  }

  /** Restarts a killed peer and waits (bounded) until its API answers, so "impaired" covers its start-up. */
  private async restart(peer: JepsenPeer): Promise<void> {
    this.cluster.restart(peer)
    const deadline = Date.now() + restartWaitMs
    while (Date.now() < deadline) {
      if ((await this.cluster.view(peer, 1000)) !== undefined) return
      await new Promise((r) => setTimeout(r, 250))
    }
  }
}
