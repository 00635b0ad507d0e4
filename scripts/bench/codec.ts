// npm run bench -- codec: the measurement behind our message and entry codec.
// The same positional tuples encoded with msgpackr (our choice), cbor-x and
// JSON: encode+decode operations per second and encoded size, for an append
// carrying 64 entries of 128 bytes, a heartbeat, and one stored entry.
// (protons needs generated code from .proto files per message type; not measured.)
import { Encoder as CborEncoder } from 'cbor-x'
import { Packr } from 'msgpackr'
import { decodeEntry, decodeMessage, encodeEntry, encodeMessage } from '../../consensus/codec.js'
import { EntryType, MessageType, type Entry, type Message } from '../../consensus/types.js'
import type { BenchArgs } from '../bench.js'
import { report, round } from './report.js'

const entries: Entry[] = Array.from({ length: 64 }, (_, k) => ({ term: 7, index: 1000 + k, type: EntryType.Normal, data: new Uint8Array(128).fill(k) }))
const append: Message = { type: MessageType.App, from: '12D3KooWAbc', to: '12D3KooWDef', term: 7, index: 999, logTerm: 7, entries, commit: 990 }
const heartbeat: Message = { type: MessageType.Heartbeat, from: '12D3KooWAbc', to: '12D3KooWDef', term: 7, commit: 990 }

function tuple(m: Message): unknown[] {
  return [m.type, m.from, m.to, m.term, m.logTerm ?? null, m.index ?? null, m.entries?.map((e) => [e.term, e.index, e.type, e.data]) ?? null, m.commit ?? null]
}

interface Codec {
  name: string
  encode: (m: Message) => Uint8Array
  decode: (b: Uint8Array) => unknown
}

const packr = new Packr({ useRecords: false })
const cbor = new CborEncoder({ useRecords: false })
const codecs: Codec[] = [
  { name: 'msgpackr (shoal codec)', encode: encodeMessage, decode: decodeMessage },
  { name: 'msgpackr (raw tuples)', encode: (m) => packr.pack(tuple(m)), decode: (b) => packr.unpack(b) },
  { name: 'cbor-x (raw tuples)', encode: (m) => cbor.encode(tuple(m)), decode: (b) => cbor.decode(b) },
  {
    name: 'JSON (base64 data)',
    encode: (m) => Buffer.from(JSON.stringify(tuple(m), (_k, v: unknown) => (v instanceof Uint8Array ? Buffer.from(v).toString('base64') : v))),
    decode: (b) => JSON.parse(Buffer.from(b).toString()) as unknown,
  },
]

function opsPerSec(run: () => void, seconds: number): number {
  for (let i = 0; i < 200; i++) run()
  let n = 0
  const started = performance.now()
  while (performance.now() - started < seconds * 1000) {
    for (let i = 0; i < 50; i++) run()
    n += 50
  }
  return n / ((performance.now() - started) / 1000)
}

export async function benchCodec(args: BenchArgs): Promise<void> {
  const seconds = Math.max(0.5, args.seconds / 5)
  for (const [label, m] of [['append of 64 x 128-byte entries', append], ['heartbeat', heartbeat]] as const) {
    for (const c of codecs) {
      const bytes = c.encode(m)
      report({ bench: 'codec', message: label, codec: c.name, bytes: bytes.byteLength, roundTripsPerSec: Math.round(opsPerSec(() => c.decode(c.encode(m)), seconds)) })
    }
  }
  const entry = entries[0]!
  report({ bench: 'codec', message: 'stored entry (128 bytes)', codec: 'msgpackr (shoal codec)', bytes: encodeEntry(entry).byteLength, roundTripsPerSec: Math.round(opsPerSec(() => decodeEntry(encodeEntry(entry)), seconds)) })
  report({ bench: 'codec', appendMbPerSec: round((opsPerSec(() => decodeMessage(encodeMessage(append)), seconds) * 64 * 128) / 1e6, 1) })
}
