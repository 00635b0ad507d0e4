// /shoal/logs/1 between two real libp2p hosts on loopback: bytes in order,
// failures with their name and fields, credit-based backpressure, aborts that
// reach the server's source, and the bound on streams served.
import { generateKeyPair } from '@libp2p/crypto/keys'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createPeerHost, type PeerHost } from '../../net/host.js'
import { generateClusterSecret } from '../../net/identity.js'
import { LogStreamServer, coalesceChunks, logChunkBytesMax, logStreamWindowBytes, openLogStream, type LogStreamHandler } from '../../net/log-stream.js'

let server: PeerHost
let caller: PeerHost
let serverId = ''
let handler: LogStreamHandler = async () => (async function* () {})()
let logServer: LogStreamServer

const streamsMax = 3

async function until(predicate: () => boolean, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs
  while (!predicate()) {
    if (Date.now() > deadline) throw new Error('timed out waiting')
    await new Promise((r) => setTimeout(r, 10))
  }
}

const text = (chunks: Uint8Array[]): string => Buffer.concat(chunks).toString()

beforeAll(async () => {
  const secret = generateClusterSecret()
  server = await createPeerHost({ privateKey: await generateKeyPair('Ed25519'), clusterSecret: secret, listen: ['/ip4/127.0.0.1/tcp/0'] })
  caller = await createPeerHost({ privateKey: await generateKeyPair('Ed25519'), clusterSecret: secret, listen: ['/ip4/127.0.0.1/tcp/0'] })
  serverId = server.peerId.toString()
  await caller.peerStore.merge(server.peerId, { multiaddrs: server.getMultiaddrs() })
  logServer = new LogStreamServer({ host: server, handler: (r, from, signal) => handler(r, from, signal), streamsMax })
  await logServer.start()
})

afterAll(async () => {
  await logServer.stop()
  await caller.stop()
  await server.stop()
})

describe('log streams between peers', () => {
  it('carry the request there and the chunks back in order, then end', async () => {
    let seen: { request: unknown; from: string } | undefined
    handler = async (request, from) => {
      seen = { request, from }
      return (async function* () {
        for (let k = 0; k < 1000; k++) yield Buffer.from(`line ${k}\n`)
      })()
    }
    const chunks: Uint8Array[] = []
    for await (const c of await openLogStream(caller, serverId, { pod: 'web', tail: 3 }, { signal: new AbortController().signal })) chunks.push(c)
    expect(seen).toEqual({ request: { pod: 'web', tail: 3 }, from: caller.peerId.toString() })
    expect(text(chunks)).toBe(Array.from({ length: 1000 }, (_, k) => `line ${k}\n`).join(''))
    // A history that arrives at once travels in a few frames, not one per line.
    expect(chunks.length).toBeLessThan(20)
    await until(() => logServer.active === 0)
  })

  it('deliver a line written later at once (a followed log)', async () => {
    let write: ((line: string) => void) | undefined
    handler = async () =>
      (async function* () {
        yield Buffer.from('first\n')
        yield Buffer.from(await new Promise<string>((resolve) => (write = resolve)))
      })()
    const chunks = (await openLogStream(caller, serverId, {}, { signal: new AbortController().signal }))[Symbol.asyncIterator]()
    expect(text([(await chunks.next()).value as Uint8Array])).toBe('first\n')
    await until(() => write !== undefined)
    const startedMs = Date.now()
    write!('later\n')
    expect(text([(await chunks.next()).value as Uint8Array])).toBe('later\n')
    expect(Date.now() - startedMs).toBeLessThan(500)
    expect((await chunks.next()).done).toBe(true)
  })

  it('turn a failure before the first byte into the same error, name and fields', async () => {
    handler = async () => {
      throw Object.assign(new Error('container "x" in pod "p" is waiting to start: ContainerCreating'), { name: 'StatusError', code: 400, reason: 'BadRequest' })
    }
    const failure = await openLogStream(caller, serverId, {}, { signal: new AbortController().signal }).catch((e: Error) => e)
    expect(failure).toMatchObject({ name: 'StatusError', message: 'container "x" in pod "p" is waiting to start: ContainerCreating', code: 400, reason: 'BadRequest' })
    await until(() => logServer.active === 0)
  })

  it('let a server read only as far ahead as the caller takes (backpressure)', async () => {
    let pulledBytes = 0
    const line = Buffer.alloc(1000, 'x')
    handler = async () =>
      (async function* () {
        for (let k = 0; k < 5000; k++) {
          pulledBytes += line.byteLength
          yield line
        }
      })()
    const chunks = (await openLogStream(caller, serverId, {}, { signal: new AbortController().signal }))[Symbol.asyncIterator]()
    await new Promise((r) => setTimeout(r, 500))
    // Nobody reads: the server stops at the window plus what it holds (a chunk being built, one line ahead).
    const bound = logStreamWindowBytes + 2 * logChunkBytesMax + line.byteLength
    expect(pulledBytes).toBeGreaterThan(0)
    expect(pulledBytes).toBeLessThanOrEqual(bound)
    let received = 0
    for (let r = await chunks.next(); r.done !== true; r = await chunks.next()) received += r.value.byteLength
    expect(received).toBe(5000 * line.byteLength)
  })

  it('stop the server\'s source when the caller aborts', async () => {
    let sourceSignal: AbortSignal | undefined
    let sourceFinished = false
    handler = async (_r, _f, signal) => {
      sourceSignal = signal
      return (async function* () {
        try {
          yield Buffer.from('hello\n')
          await new Promise((resolve) => signal.addEventListener('abort', resolve))
        } finally {
          sourceFinished = true
        }
      })()
    }
    const abort = new AbortController()
    const chunks = (await openLogStream(caller, serverId, {}, { signal: abort.signal }))[Symbol.asyncIterator]()
    expect(text([(await chunks.next()).value as Uint8Array])).toBe('hello\n')
    const pending = chunks.next()
    abort.abort()
    await expect(pending).rejects.toThrow()
    await until(() => sourceSignal?.aborted === true && sourceFinished && logServer.active === 0)
  })

  it(`serve at most ${streamsMax} streams at once and refuse the next clearly`, async () => {
    handler = async (_r, _f, signal) =>
      (async function* () {
        yield Buffer.from('open\n')
        await new Promise((resolve) => signal.addEventListener('abort', resolve))
      })()
    const aborts = Array.from({ length: streamsMax }, () => new AbortController())
    const open = await Promise.all(aborts.map((a) => openLogStream(caller, serverId, {}, { signal: a.signal })))
    expect(logServer.active).toBe(streamsMax)
    const refused = await openLogStream(caller, serverId, {}, { signal: new AbortController().signal }).catch((e: Error) => e)
    expect(refused).toMatchObject({ name: 'TooManyLogStreamsError', message: `this peer already serves ${streamsMax} log streams, its limit; try again later` })
    aborts[0]!.abort()
    await until(() => logServer.active === streamsMax - 1)
    const again = new AbortController()
    const chunks = (await openLogStream(caller, serverId, {}, { signal: again.signal }))[Symbol.asyncIterator]()
    expect(text([(await chunks.next()).value as Uint8Array])).toBe('open\n')
    again.abort()
    for (const a of aborts) a.abort()
    expect(open).toHaveLength(streamsMax)
    await until(() => logServer.active === 0)
  })
})

describe('coalesceChunks', () => {
  it('joins what arrives together, splits what is too large, and flushes when the source pauses', async () => {
    async function* source(): AsyncGenerator<Uint8Array> {
      yield Buffer.from('a')
      yield Buffer.from('b')
      yield Buffer.alloc(10, 'c')
      await new Promise((r) => setTimeout(r, 20))
      yield Buffer.from('d')
    }
    const out: string[] = []
    for await (const c of coalesceChunks(source(), 4)) out.push(Buffer.from(c).toString())
    expect(out).toEqual(['abcc', 'cccc', 'cccc', 'd'])
  })
})
