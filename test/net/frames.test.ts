// Frames between two real libp2p hosts: many small frames sent in one write
// arrive as they were, even when together they are far larger than one frame
// may be; a frame over the bound aborts the stream.
import { generateKeyPair } from '@libp2p/crypto/keys'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { readFrames, sendFrames } from '../../net/frames.js'
import { createPeerHost, type PeerHost } from '../../net/host.js'
import { generateClusterSecret } from '../../net/identity.js'

const protocol = '/shoal/test-frames/1'
const maxFrameBytes = 64
let a: PeerHost
let b: PeerHost
const received: number[][] = []
let closedWith: Error | undefined | null = null

beforeAll(async () => {
  const secret = generateClusterSecret()
  a = await createPeerHost({ privateKey: await generateKeyPair('Ed25519'), clusterSecret: secret, listen: ['/ip4/127.0.0.1/tcp/0'] })
  b = await createPeerHost({ privateKey: await generateKeyPair('Ed25519'), clusterSecret: secret, listen: ['/ip4/127.0.0.1/tcp/0'] })
  await b.handle(protocol, (stream) => {
    const frames: number[] = []
    received.push(frames)
    readFrames(stream, maxFrameBytes, { onFrame: (f) => frames.push(f.byteLength), onClose: (err) => (closedWith = err) })
  })
}, 30_000)

afterAll(async () => {
  await a?.stop()
  await b?.stop()
})

describe('frames', () => {
  it('delivers 500 small frames sent in one write, together 16 KiB, with a 64-byte frame bound', async () => {
    const stream = await a.dialProtocol(b.getMultiaddrs(), protocol)
    await sendFrames(stream, Array.from({ length: 500 }, () => new Uint8Array(32)))
    await expect.poll(() => received[0]?.length ?? 0, { timeout: 5000 }).toBe(500)
    expect(received[0]!.every((n) => n === 32)).toBe(true)
    await stream.close()
  })

  it('aborts a stream that sends a frame over the bound', async () => {
    closedWith = null
    const stream = await a.dialProtocol(b.getMultiaddrs(), protocol)
    await sendFrames(stream, [new Uint8Array(maxFrameBytes + 1)])
    await expect.poll(() => closedWith, { timeout: 5000 }).toBeInstanceOf(Error)
    stream.abort(new Error('done'))
  })
})
