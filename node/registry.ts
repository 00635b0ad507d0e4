// The replicated cluster registry: which peers joined (name, addresses, API
// address) and which left, plus small cluster-wide settings. It is a Raft state
// machine: every peer applies the same commands in the same order, keeps the
// result in memory and in LevelDB next to the Raft log, and can snapshot it.
import { Packr } from 'msgpackr'
import type { StoreBatchOperation } from '../consensus/log-store.js'

const packr = new Packr({ useRecords: false, moreTypes: false })
const encoder = new TextEncoder()
const decoder = new TextDecoder()

export interface PeerRecord {
  peerId: string
  name: string
  addresses: string[]
  apiAddress: string | null
  joinedAtMs: number
  leftAtMs: number | null
}

export type RegistryCommand =
  | { op: 'register'; peer: Omit<PeerRecord, 'leftAtMs'> }
  | { op: 'left'; peerId: string; atMs: number }
  | { op: 'set'; key: string; value: string }
  | { op: 'delete'; key: string }

export function encodeCommand(command: RegistryCommand): Uint8Array {
  return packr.pack(command)
}

export const registryOps = new Set(['register', 'left', 'set', 'delete'])

const prefix = 'r/'

function peerKey(peerId: string): Uint8Array {
  return encoder.encode(`${prefix}peer/${peerId}`)
}

function settingKey(key: string): Uint8Array {
  return encoder.encode(`${prefix}set/${key}`)
}

/** The store the registry lives in (the LevelDB handle of the Raft log store). */
export interface RegistryDb {
  iterator(options: { gte: Uint8Array; lt: Uint8Array }): AsyncIterable<[Uint8Array, Uint8Array]>
  get(key: Uint8Array): Promise<Uint8Array | undefined>
  batch(ops: StoreBatchOperation[]): Promise<void>
}

export class ClusterRegistry {
  readonly peers = new Map<string, PeerRecord>()
  readonly settings = new Map<string, string>()
  private readonly listeners = new Set<(command: RegistryCommand) => void>()

  constructor(private readonly db: RegistryDb) {}

  /** Read what was applied before a restart. */
  async load(): Promise<void> {
    for await (const [key, value] of this.db.iterator({ gte: encoder.encode(prefix), lt: encoder.encode('r0') })) {
      const k = decoder.decode(key)
      if (k.startsWith(`${prefix}peer/`)) {
        const record = packr.unpack(value) as PeerRecord
        this.peers.set(record.peerId, record)
      } else if (k.startsWith(`${prefix}set/`)) {
        this.settings.set(k.slice(`${prefix}set/`.length), decoder.decode(value))
      }
    }
  }

  onCommand(listener: (command: RegistryCommand) => void): void {
    this.listeners.add(listener)
  }

  /** Tell listeners about commands applied (after their batch is written). */
  notify(applied: readonly RegistryCommand[]): void {
    for (const c of applied) for (const l of this.listeners) l(c)
  }

  /** Apply one command; its LevelDB operations go into `ops`. Returns whether it changed anything. */
  applyCommand(command: RegistryCommand, ops: StoreBatchOperation[]): boolean {
    switch (command.op) {
      case 'register': {
        const record: PeerRecord = { ...command.peer, leftAtMs: null }
        this.peers.set(record.peerId, record)
        ops.push({ type: 'put', key: peerKey(record.peerId), value: packr.pack(record) })
        return true
      }
      case 'left': {
        const record = this.peers.get(command.peerId)
        if (record === undefined) return false
        record.leftAtMs = command.atMs
        ops.push({ type: 'put', key: peerKey(record.peerId), value: packr.pack(record) })
        return true
      }
      case 'set':
        this.settings.set(command.key, command.value)
        ops.push({ type: 'put', key: settingKey(command.key), value: encoder.encode(command.value) })
        return true
      case 'delete':
        this.settings.delete(command.key)
        ops.push({ type: 'del', key: settingKey(command.key) })
        return true
    }
  }

  /** The registry's state for a Raft snapshot. */
  snapshotState(): { peers: PeerRecord[]; settings: [string, string][] } {
    return { peers: [...this.peers.values()], settings: [...this.settings] }
  }

  restoreState(state: { peers: PeerRecord[]; settings: [string, string][] }, ops: StoreBatchOperation[]): void {
    for (const id of this.peers.keys()) ops.push({ type: 'del', key: peerKey(id) })
    for (const key of this.settings.keys()) ops.push({ type: 'del', key: settingKey(key) })
    this.peers.clear()
    this.settings.clear()
    for (const p of state.peers) this.applyCommand({ op: 'register', peer: p }, ops)
    for (const p of state.peers) if (p.leftAtMs !== null) this.applyCommand({ op: 'left', peerId: p.peerId, atMs: p.leftAtMs }, ops)
    for (const [key, value] of state.settings) this.applyCommand({ op: 'set', key, value }, ops)
  }

  /** Live (not departed) peers. */
  activePeers(): PeerRecord[] {
    return [...this.peers.values()].filter((p) => p.leftAtMs === null)
  }

  peerByName(name: string): PeerRecord | undefined {
    return this.activePeers().find((p) => p.name === name)
  }
}

/** Within one batch only the last write of a key matters: LevelDB charges per operation. */
export function lastWritePerKey(ops: StoreBatchOperation[]): StoreBatchOperation[] {
  const byKey = new Map<string, StoreBatchOperation>()
  for (const op of ops) {
    const key = decoder.decode(op.key)
    byKey.delete(key)
    byKey.set(key, op)
  }
  return [...byKey.values()]
}
