import { spawn } from 'node:child_process'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import fc from 'fast-check'
import { afterEach, describe, expect, it } from 'vitest'
import { LevelLogStore, segmentKey } from '../../consensus/log-store.js'
import { bootstrapState } from '../../consensus/node.js'
import { EntryType, type Entry, type HardState, type PendingSnapshot, type Ready } from '../../consensus/types.js'
import { SimStorage } from '../sim/storage.js'
import { entryData } from './fixtures/entry-data.js'

const directories: string[] = []
async function freshDirectory(): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'shoal-log-'))
  directories.push(dir)
  return dir
}
afterEach(async () => {
  for (const dir of directories.splice(0)) await rm(dir, { recursive: true, force: true })
})

type PersistStep = Pick<Ready, 'hardState' | 'snapshot' | 'entries'>

/** Random but valid Ready sequences: appends, overwrites of an uncommitted tail, compactions, installs. */
function stepsArbitrary(): fc.Arbitrary<PersistStep[]> {
  return fc.array(fc.tuple(fc.nat(3), fc.nat(10), fc.nat(1000)), { minLength: 1, maxLength: 25 }).map((raw) => {
    const steps: PersistStep[] = []
    let first = 1
    let last = 0
    let term = 1
    let commit = 0
    for (const [kind, n, salt] of raw) {
      const hardState: HardState = { term, vote: null, commit }
      let snapshot: PendingSnapshot | null = null
      let entries: Entry[] = []
      if (kind === 0 || last < first) {
        entries = makeEntries(last + 1, n + 1, term, salt)
      } else if (kind === 1) {
        const from = Math.max(first, commit + 1, last - n + 1)
        term++
        entries = makeEntries(from, n + 1, term, salt)
      } else if (kind === 2 && commit >= first) {
        const index = first + (salt % (commit - first + 1))
        snapshot = { snapshot: { metadata: { index, term: 1, confState: { voters: ['a'], learners: [] } }, data: new Uint8Array([salt % 256]) }, replacesLog: false }
        first = index + 1
      } else {
        const index = last + 1 + n
        snapshot = { snapshot: { metadata: { index, term, confState: { voters: ['a', 'b'], learners: ['c'] } }, data: new Uint8Array(salt % 50) }, replacesLog: true }
        first = index + 1
        last = index
        commit = index
      }
      const lastEntry = entries[entries.length - 1]
      if (lastEntry !== undefined) last = lastEntry.index
      commit = Math.max(commit, Math.min(last, commit + (salt % 5)))
      steps.push({ hardState: { ...hardState, term, commit }, snapshot, entries })
    }
    return steps
  })
}

function makeEntries(from: number, count: number, term: number, salt: number): Entry[] {
  return Array.from({ length: count }, (_, k) => ({ term, index: from + k, type: EntryType.Normal, data: new Uint8Array([salt % 256, k]) }))
}

describe('LevelLogStore', () => {
  it('stores what the persist plan says, exactly as the simulator storage model does, across reopen', async () => {
    await fc.assert(
      fc.asyncProperty(stepsArbitrary(), async (steps) => {
        const dir = await freshDirectory()
        let store = await LevelLogStore.open(dir)
        await store.load()
        const model = new SimStorage()
        for (const [k, step] of steps.entries()) {
          await store.persist(step)
          model.write(step)
          if (k % 7 === 6) {
            await store.close()
            store = await LevelLogStore.open(dir)
            await store.load()
          }
        }
        await store.close()
        store = await LevelLogStore.open(dir)
        const loaded = await store.load()
        await store.close()
        expect(loaded).toEqual(model.load())
      }),
      { numRuns: 40 },
    )
  })

  it('bootstraps a founding state and reads it back', async () => {
    const dir = await freshDirectory()
    const store = await LevelLogStore.open(dir)
    expect(await store.isEmpty()).toBe(true)
    await store.bootstrap(bootstrapState(['n2', 'n1']))
    expect(await store.isEmpty()).toBe(false)
    const state = await store.load()
    expect(state.hardState).toEqual({ term: 1, vote: null, commit: 2 })
    expect(state.entries.map((e) => [e.index, e.type])).toEqual([[1, EntryType.ConfChange], [2, EntryType.ConfChange]])
    await expect(store.bootstrap(bootstrapState(['n1']))).rejects.toThrow(/already holds a Raft log/)
    await store.close()
  })

  it('reports a value that fails its checksum, naming the data directory', async () => {
    const dir = await freshDirectory()
    const store = await LevelLogStore.open(dir)
    await store.persist({ hardState: { term: 1, vote: null, commit: 3 }, snapshot: null, entries: makeEntries(1, 3, 1, 7) })
    const value = (await store.db.get(segmentKey(1)))!
    value[value.byteLength - 1] = value[value.byteLength - 1]! ^ 0xff
    await store.db.put(segmentKey(1), value)
    await expect(store.load()).rejects.toMatchObject({ name: 'LogCorruptionError', directory: dir, message: expect.stringMatching(/segment at 1 fails its checksum/) })
    await store.close()
  })

  it('reports missing entries instead of starting with another history', async () => {
    const dir = await freshDirectory()
    const store = await LevelLogStore.open(dir)
    // Three Readys, three segments: [1, 2], [3, 4], [5].
    await store.persist({ hardState: { term: 1, vote: null, commit: 2 }, snapshot: null, entries: makeEntries(1, 2, 1, 7) })
    await store.persist({ hardState: { term: 1, vote: null, commit: 4 }, snapshot: null, entries: makeEntries(3, 2, 1, 7) })
    await store.persist({ hardState: { term: 1, vote: null, commit: 5 }, snapshot: null, entries: makeEntries(5, 1, 1, 7) })
    expect((await store.load()).entries.map((e) => e.index)).toEqual([1, 2, 3, 4, 5])
    await store.db.del(segmentKey(3))
    await expect(store.load()).rejects.toMatchObject({ name: 'LogCorruptionError', message: expect.stringMatching(/jump from 2 to 5/) })
    await store.db.del(segmentKey(5))
    await expect(store.load()).rejects.toMatchObject({ name: 'LogCorruptionError', message: expect.stringMatching(/commit index 5 is beyond the last stored entry 2/) })
    await store.close()
  })

  it('keeps every acknowledged entry when the writer is killed with SIGKILL at random moments', async () => {
    const dir = await freshDirectory()
    const fixture = new URL('./fixtures/log-writer.ts', import.meta.url).pathname
    let acknowledged = 0
    for (let round = 0; round < 5; round++) {
      const child = spawn(process.execPath, ['--import', 'tsx', fixture, dir], { stdio: ['ignore', 'pipe', 'inherit'] })
      let buffered = ''
      let acksThisRound = 0
      child.stdout.on('data', (chunk: Buffer) => {
        buffered += chunk.toString()
        const lines = buffered.split('\n')
        buffered = lines.pop()!
        for (const line of lines) {
          acknowledged = Math.max(acknowledged, Number(line.slice(4)))
          acksThisRound++
        }
      })
      await new Promise<void>((resolve) => {
        const killAfterAcks = 20 + round * 17
        const poll = setInterval(() => {
          if (acksThisRound >= killAfterAcks) {
            clearInterval(poll)
            child.kill('SIGKILL')
          }
        }, 1)
        child.on('exit', () => resolve())
      })
      const store = await LevelLogStore.open(dir)
      const state = await store.load()
      await store.close()
      const last = state.entries[state.entries.length - 1]!.index
      expect(last).toBeGreaterThanOrEqual(acknowledged)
      expect(state.hardState.commit).toBeGreaterThanOrEqual(acknowledged)
      for (const e of state.entries) expect(e.data).toEqual(entryData(e.index))
    }
    expect(acknowledged).toBeGreaterThan(100)
  })
})
