import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { decodeEntries, decodeHardState, decodeMessage, encodeEntries, encodeHardState, encodeMessage } from '../../consensus/codec.js'
import type { Entry, Message, MessageType } from '../../consensus/types.js'

const bytes = fc.uint8Array({ maxLength: 64 })
const entry: fc.Arbitrary<Entry> = fc.record({ term: fc.nat(), index: fc.nat(), type: fc.constantFrom(0 as const, 1 as const), data: bytes })
const message: fc.Arbitrary<Message> = fc.record(
  {
    type: fc.integer({ min: 0, max: 16 }).map((t) => t as MessageType),
    from: fc.string({ minLength: 1 }),
    to: fc.string({ minLength: 1 }),
    term: fc.nat(),
    logTerm: fc.nat(),
    index: fc.nat(),
    entries: fc.array(entry, { maxLength: 5 }),
    commit: fc.nat(),
    reject: fc.boolean(),
    rejectHint: fc.nat(),
    context: bytes,
    snapshot: fc.record({
      metadata: fc.record({ index: fc.nat(), term: fc.nat(), confState: fc.record({ voters: fc.array(fc.string()), learners: fc.array(fc.string()) }) }),
      totalBytes: fc.nat(),
      offset: fc.nat(),
      data: bytes,
    }),
    snapshotAcked: fc.nat(),
  },
  { requiredKeys: ['type', 'from', 'to', 'term'] },
)

describe('codec', () => {
  it('round-trips every message shape exactly', () => {
    fc.assert(
      fc.property(message, (m) => {
        expect(decodeMessage(encodeMessage(m))).toEqual(m)
      }),
      { numRuns: 500 },
    )
  })

  it('round-trips entries and hard state', () => {
    fc.assert(
      fc.property(fc.array(entry, { maxLength: 20 }), (entries) => {
        expect(decodeEntries(encodeEntries(entries))).toEqual(entries)
      }),
    )
    fc.assert(
      fc.property(fc.record({ term: fc.nat(), vote: fc.option(fc.string(), { nil: null }), commit: fc.nat() }), (h) => {
        expect(decodeHardState(encodeHardState(h))).toEqual(h)
      }),
    )
  })

  it('turns any garbage into a CodecError, never another failure', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 200 }), (garbage) => {
        try {
          decodeMessage(garbage)
        } catch (err) {
          expect((err as Error).name).toBe('CodecError')
        }
      }),
      { numRuns: 2000 },
    )
  })

  it('rejects well-formed MessagePack that is not a message', () => {
    const notAMessage = encodeEntries([])
    expect(() => decodeMessage(notAMessage)).toThrow(expect.objectContaining({ name: 'CodecError' }))
  })
})
