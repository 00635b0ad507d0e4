// Binary encoding of Raft messages and log entries: MessagePack (msgpackr) of
// positional tuples, chosen by `npm run bench -- codec` (see consensus/README.md).
// Tuples keep messages small and decoding monomorphic; field order is the format.
import { Packr } from 'msgpackr'
import type {
  ConfState,
  Entry,
  EntryType,
  HardState,
  Message,
  MessageType,
  Snapshot,
  SnapshotChunk,
  SnapshotMetadata,
} from './types.js'

const packr = new Packr({ useRecords: false, moreTypes: false, bundleStrings: false, copyBuffers: true })

export class CodecError extends Error {
  override readonly name = 'CodecError'
}

type EntryTuple = [number, number, number, Uint8Array]
type MetaTuple = [number, number, string[], string[]]
type ChunkTuple = [MetaTuple, number, number, Uint8Array]
type MessageTuple = [
  number, string, string, number,
  number | null, number | null, EntryTuple[] | null, number | null,
  boolean | null, number | null, Uint8Array | null, ChunkTuple | null, number | null,
]

/** msgpackr hands back Node Buffers; callers get plain Uint8Array views of the same bytes. */
function plainBytes(bytes: Uint8Array): Uint8Array {
  return bytes.constructor === Uint8Array ? bytes : new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength)
}

function entryToTuple(e: Entry): EntryTuple {
  return [e.term, e.index, e.type, e.data]
}

function entryFromTuple(t: unknown): Entry {
  if (!Array.isArray(t) || t.length !== 4) throw new CodecError('malformed entry')
  const [term, index, type, data] = t as EntryTuple
  if (typeof term !== 'number' || typeof index !== 'number' || (type !== 0 && type !== 1) || !(data instanceof Uint8Array)) {
    throw new CodecError('malformed entry fields')
  }
  return { term, index, type: type as EntryType, data: plainBytes(data) }
}

function metaToTuple(m: SnapshotMetadata): MetaTuple {
  return [m.index, m.term, m.confState.voters, m.confState.learners]
}

function metaFromTuple(t: unknown): SnapshotMetadata {
  if (!Array.isArray(t) || t.length !== 4) throw new CodecError('malformed snapshot metadata')
  const [index, term, voters, learners] = t as MetaTuple
  if (typeof index !== 'number' || typeof term !== 'number' || !isStringArray(voters) || !isStringArray(learners)) {
    throw new CodecError('malformed snapshot metadata fields')
  }
  const confState: ConfState = { voters, learners }
  return { index, term, confState }
}

function isStringArray(v: unknown): v is string[] {
  return Array.isArray(v) && v.every((x) => typeof x === 'string')
}

export function encodeMessage(m: Message): Uint8Array {
  const s = m.snapshot
  const tuple: MessageTuple = [
    m.type, m.from, m.to, m.term,
    m.logTerm ?? null, m.index ?? null, m.entries === undefined ? null : m.entries.map(entryToTuple), m.commit ?? null,
    m.reject ?? null, m.rejectHint ?? null, m.context ?? null,
    s === undefined ? null : [metaToTuple(s.metadata), s.totalBytes, s.offset, s.data], m.snapshotAcked ?? null,
  ]
  return packr.pack(tuple)
}

export function decodeMessage(bytes: Uint8Array): Message {
  let t: unknown
  try {
    t = packr.unpack(bytes)
  } catch (err) {
    throw new CodecError(`undecodable message: ${(err as Error).message}`)
  }
  if (!Array.isArray(t) || t.length !== 13) throw new CodecError('malformed message')
  const [type, from, to, term, logTerm, index, entries, commit, reject, rejectHint, context, snapshot, snapshotAcked] = t as MessageTuple
  if (typeof type !== 'number' || type < 0 || type > 16 || typeof from !== 'string' || typeof to !== 'string' || typeof term !== 'number') {
    throw new CodecError('malformed message header')
  }
  const m: Message = { type: type as MessageType, from, to, term }
  if (typeof logTerm === 'number') m.logTerm = logTerm
  if (typeof index === 'number') m.index = index
  if (Array.isArray(entries)) m.entries = entries.map(entryFromTuple)
  if (typeof commit === 'number') m.commit = commit
  if (typeof reject === 'boolean') m.reject = reject
  if (typeof rejectHint === 'number') m.rejectHint = rejectHint
  if (context instanceof Uint8Array) m.context = plainBytes(context)
  if (Array.isArray(snapshot)) m.snapshot = chunkFromTuple(snapshot)
  if (typeof snapshotAcked === 'number') m.snapshotAcked = snapshotAcked
  return m
}

function chunkFromTuple(t: unknown[]): SnapshotChunk {
  const [meta, totalBytes, offset, data] = t
  if (typeof totalBytes !== 'number' || typeof offset !== 'number' || !(data instanceof Uint8Array)) {
    throw new CodecError('malformed snapshot chunk')
  }
  return { metadata: metaFromTuple(meta), totalBytes, offset, data: plainBytes(data) }
}

export function encodeEntry(e: Entry): Uint8Array {
  return packr.pack(entryToTuple(e))
}

export function decodeEntry(bytes: Uint8Array): Entry {
  try {
    return entryFromTuple(packr.unpack(bytes))
  } catch (err) {
    if (err instanceof CodecError) throw err
    throw new CodecError(`undecodable entry: ${(err as Error).message}`)
  }
}

/** A run of entries (a stored log segment). */
export function encodeEntries(entries: readonly Entry[]): Uint8Array {
  return packr.pack(entries.map(entryToTuple))
}

export function decodeEntries(bytes: Uint8Array): Entry[] {
  const t: unknown = packr.unpack(bytes)
  if (!Array.isArray(t)) throw new CodecError('malformed entry list')
  return t.map(entryFromTuple)
}

export function encodeHardState(h: HardState): Uint8Array {
  return packr.pack([h.term, h.vote, h.commit])
}

export function decodeHardState(bytes: Uint8Array): HardState {
  const t: unknown = packr.unpack(bytes)
  if (!Array.isArray(t) || t.length !== 3) throw new CodecError('malformed hard state')
  const [term, vote, commit] = t as [unknown, unknown, unknown]
  if (typeof term !== 'number' || (vote !== null && typeof vote !== 'string') || typeof commit !== 'number') {
    throw new CodecError('malformed hard state fields')
  }
  return { term, vote, commit }
}

export function encodeSnapshotMetadata(m: SnapshotMetadata): Uint8Array {
  return packr.pack(metaToTuple(m))
}

export function decodeSnapshotMetadata(bytes: Uint8Array): SnapshotMetadata {
  return metaFromTuple(packr.unpack(bytes))
}

export function encodeSnapshot(s: Snapshot): Uint8Array {
  return packr.pack([metaToTuple(s.metadata), s.data])
}

export function decodeSnapshot(bytes: Uint8Array): Snapshot {
  const t: unknown = packr.unpack(bytes)
  if (!Array.isArray(t) || t.length !== 2 || !(t[1] instanceof Uint8Array)) throw new CodecError('malformed snapshot')
  return { metadata: metaFromTuple(t[0]), data: plainBytes(t[1]) }
}
