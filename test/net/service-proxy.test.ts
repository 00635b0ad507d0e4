// The userspace service proxy on real loopback sockets: VIPs in 127.77.201.0/24
// and 127.77.210-213.x, endpoints in 127.79.201.0/24, a NodePort "host address"
// 127.79.202.1. Round robin, ClientIP affinity, dead endpoints skipped, quick
// rejection without endpoints, half-close, bounded buffering for a slow reader,
// UDP, NodePort, and incremental apply with 1,000 service ports.
import { randomBytes } from 'node:crypto'
import { createSocket, type Socket as UdpSocket } from 'node:dgram'
import { connect, createServer, type AddressInfo, type Server, type Socket } from 'node:net'
import { afterAll, afterEach, describe, expect, it } from 'vitest'
import type { ProxyEndpoint, ProxyServicePort } from '../../net/proxy-types.js'
import { ServiceProxy } from '../../net/service-proxy.js'
import { firehose } from './firehose.js'

const servers: Server[] = []
const udpSockets: UdpSocket[] = []
let proxy = new ServiceProxy({ tunnel: null, nodePortAddresses: ['127.79.202.1'] })

afterEach(async () => {
  await proxy.close()
  proxy = new ServiceProxy({ tunnel: null, nodePortAddresses: ['127.79.202.1'] })
})

afterAll(async () => {
  await proxy.close()
  for (const s of servers) s.close()
  for (const s of udpSockets) s.close()
})

async function listen(server: Server, host: string): Promise<ProxyEndpoint> {
  servers.push(server)
  // A reset passed on from a client that went away is expected.
  server.on('connection', (s: Socket) => s.on('error', () => undefined))
  await new Promise<void>((resolve) => server.listen({ host, port: 0 }, resolve))
  return { ip: host, port: (server.address() as AddressInfo).port, viaPeerId: null }
}

/** An endpoint that says its name to every connection and closes. */
function namedEndpoint(name: string, host: string): Promise<ProxyEndpoint> {
  return listen(createServer((s) => s.end(name)), host)
}

/** An endpoint that echoes. */
function echoEndpoint(host: string): Promise<ProxyEndpoint> {
  return listen(createServer((s) => s.pipe(s)), host)
}

function servicePort(id: string, vip: string, port: number, endpoints: ProxyEndpoint[], extra: Partial<ProxyServicePort> = {}): ProxyServicePort {
  return { id, vip, port, protocol: 'TCP', sessionAffinity: 'None', affinityTimeoutMs: 10_800_000, endpoints, ...extra }
}

/** Connects, optionally from `localAddress`, and reads until the server closes. */
function fetchText(host: string, port: number, localAddress?: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host, port, ...(localAddress === undefined ? {} : { localAddress }) })
    const chunks: Buffer[] = []
    socket.on('data', (c: Buffer) => chunks.push(c))
    socket.on('end', () => resolve(Buffer.concat(chunks).toString()))
    socket.on('error', reject)
  })
}

function connected(host: string, port: number): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host, port }, () => resolve(socket))
    socket.once('error', reject)
  })
}

function nextData(socket: Socket): Promise<string> {
  return new Promise((resolve) => socket.once('data', (c: Buffer) => resolve(c.toString())))
}

describe('the userspace service proxy (TCP)', () => {
  it('answers on the VIP with round robin over two endpoints', async () => {
    const a = await namedEndpoint('a', '127.79.201.1')
    const b = await namedEndpoint('b', '127.79.201.2')
    const applied = await proxy.apply([servicePort('default/web:80/TCP', '127.77.201.1', 8080, [a, b])])
    expect(applied).toMatchObject({ opened: 1, failed: [] })
    const answers: string[] = []
    for (let k = 0; k < 6; k++) answers.push(await fetchText('127.77.201.1', 8080))
    expect(answers.join('')).toMatch(/^(ab){3}$|^(ba){3}$/)
  })

  it('keeps a client IP on one endpoint with ClientIP affinity, and other clients still spread', async () => {
    const a = await namedEndpoint('a', '127.79.201.3')
    const b = await namedEndpoint('b', '127.79.201.4')
    await proxy.apply([servicePort('default/sticky:80/TCP', '127.77.201.2', 8080, [a, b], { sessionAffinity: 'ClientIP' })])
    const fromOne = new Set<string>()
    for (let k = 0; k < 5; k++) fromOne.add(await fetchText('127.77.201.2', 8080, '127.0.0.51'))
    expect(fromOne.size).toBe(1)
    const others = new Set<string>()
    for (let k = 52; k < 58; k++) others.add(await fetchText('127.77.201.2', 8080, `127.0.0.${k}`))
    expect(others).toEqual(new Set(['a', 'b']))
  })

  it('skips an endpoint where nothing listens, transparently', async () => {
    const alive = await namedEndpoint('alive', '127.79.201.5')
    const dead: ProxyEndpoint = { ip: '127.79.201.6', port: 9, viaPeerId: null }
    await proxy.apply([servicePort('default/half-dead:80/TCP', '127.77.201.3', 8080, [dead, alive])])
    for (let k = 0; k < 4; k++) expect(await fetchText('127.77.201.3', 8080)).toBe('alive')
    expect(proxy.failedConnectsTotal).toBeGreaterThanOrEqual(2)
  })

  it('rejects a client at once when the service has no ready endpoint', async () => {
    await proxy.apply([servicePort('default/empty:80/TCP', '127.77.201.4', 8080, [])])
    const startedMs = Date.now()
    const outcome = await new Promise<string>((resolve) => {
      const socket = connect({ host: '127.77.201.4', port: 8080 })
      socket.on('error', (err: NodeJS.ErrnoException) => resolve(err.code ?? 'error'))
      socket.on('close', () => resolve('closed'))
      socket.resume()
    })
    expect(['ECONNRESET', 'closed']).toContain(outcome)
    expect(Date.now() - startedMs).toBeLessThan(250)
  })

  it('carries a half-close: the client ends its side and still reads the answer', async () => {
    // The endpoint answers only once the client has finished sending.
    const counter = await listen(
      createServer({ allowHalfOpen: true }, (s) => {
        let bytes = 0
        s.on('data', (c: Buffer) => (bytes += c.byteLength))
        s.on('end', () => s.end(`got ${bytes}`))
      }),
      '127.79.201.7',
    )
    await proxy.apply([servicePort('default/counter:80/TCP', '127.77.201.5', 8080, [counter])])
    const answer = await new Promise<string>((resolve, reject) => {
      const socket = connect({ host: '127.77.201.5', port: 8080, allowHalfOpen: true })
      const chunks: Buffer[] = []
      socket.on('data', (c: Buffer) => chunks.push(c))
      socket.on('end', () => resolve(Buffer.concat(chunks).toString()))
      socket.on('error', reject)
      socket.end('hello world')
    })
    expect(answer).toBe('got 11')
  })

  it('does not buffer without bound for a slow reader, and delivers everything once it reads', async () => {
    const totalBytes = 160 * 1024 * 1024
    const source = firehose(totalBytes, 7)
    const endpoint = await listen(source.server, '127.79.201.8')
    await proxy.apply([servicePort('default/firehose:80/TCP', '127.77.201.6', 8080, [endpoint])])
    const client = await connected('127.77.201.6', 8080)
    client.pause()
    await new Promise((r) => setTimeout(r, 800))
    const stalledAt = source.writtenBytes()
    await new Promise((r) => setTimeout(r, 300))
    // The endpoint is held back (only kernel buffers fill), and the proxy holds little itself.
    expect(source.writtenBytes()).toBe(stalledAt)
    expect(stalledAt).toBeLessThan(totalBytes)
    expect(proxy.bufferedBytes()).toBeLessThan(1024 * 1024)
    let received = 0
    await new Promise<void>((resolve) => {
      client.on('data', (c: Buffer) => (received += c.byteLength))
      client.on('end', resolve)
      client.resume()
    })
    expect(received).toBe(totalBytes)
  })

  it('carries bulk bytes intact both ways, and holds a fast client back while the endpoint does not read', async () => {
    const echo = await listen(createServer({ allowHalfOpen: true }, (s) => s.pipe(s)), '127.79.201.15')
    let sleeper: Socket | undefined
    const stalled = await listen(
      createServer((s) => {
        sleeper = s
        s.pause()
      }),
      '127.79.201.16',
    )
    await proxy.apply([servicePort('default/echo:80/TCP', '127.77.201.10', 8080, [echo]), servicePort('default/sleeper:80/TCP', '127.77.201.11', 8080, [stalled])])
    const bulk = randomBytes(16 * 1024 * 1024)
    const echoed = await new Promise<Buffer>((resolve, reject) => {
      const socket = connect({ host: '127.77.201.10', port: 8080, allowHalfOpen: true })
      const chunks: Buffer[] = []
      socket.on('data', (c: Buffer) => chunks.push(c))
      socket.on('end', () => resolve(Buffer.concat(chunks)))
      socket.on('error', reject)
      socket.end(bulk)
    })
    expect(echoed.equals(bulk)).toBe(true)

    const uploader = await connected('127.77.201.11', 8080)
    const chunk = Buffer.alloc(64 * 1024, 9)
    let acceptedBytes = 0
    const pump = (): void => {
      while (acceptedBytes < 256 * 1024 * 1024) {
        acceptedBytes += chunk.byteLength
        if (!uploader.write(chunk)) return void uploader.once('drain', pump)
      }
    }
    pump()
    await new Promise((r) => setTimeout(r, 800))
    const stalledAt = acceptedBytes
    await new Promise((r) => setTimeout(r, 300))
    expect(acceptedBytes).toBe(stalledAt)
    expect(stalledAt).toBeLessThan(256 * 1024 * 1024)
    expect(proxy.bufferedBytes()).toBeLessThan(1024 * 1024)
    uploader.destroy()
    sleeper?.destroy()
  })

  it('lets a connection to a removed endpoint finish, and sends new ones elsewhere', async () => {
    const old = await echoEndpoint('127.79.201.9')
    const fresh = await namedEndpoint('fresh', '127.79.201.10')
    const spec = servicePort('default/rolling:80/TCP', '127.77.201.7', 8080, [old])
    await proxy.apply([spec])
    const longLived = await connected('127.77.201.7', 8080)
    longLived.write('before')
    expect(await nextData(longLived)).toBe('before')
    expect(await proxy.apply([{ ...spec, endpoints: [fresh] }])).toMatchObject({ updated: 1, opened: 0, closed: 0 })
    longLived.write('after')
    expect(await nextData(longLived)).toBe('after')
    for (let k = 0; k < 3; k++) expect(await fetchText('127.77.201.7', 8080)).toBe('fresh')
    longLived.destroy()
  })

  it('serves a NodePort on the extra host address too', async () => {
    const a = await namedEndpoint('np', '127.79.201.11')
    await proxy.apply([servicePort('default/np:80/TCP', '127.77.201.8', 8080, [a], { nodePort: 30777 })])
    expect(await fetchText('127.77.201.8', 8080)).toBe('np')
    expect(await fetchText('127.79.202.1', 30777)).toBe('np')
    expect(proxy.listenersOf('default/np:80/TCP')).toHaveLength(2)
  })
})

describe('the userspace service proxy (UDP)', () => {
  it('relays datagrams through the VIP and the answers back from it', async () => {
    const echo = createSocket('udp4')
    udpSockets.push(echo)
    echo.on('message', (msg, from) => echo.send(Buffer.concat([Buffer.from('echo:'), msg]), from.port, from.address))
    await new Promise<void>((resolve) => echo.bind({ address: '127.79.201.12', port: 0 }, resolve))
    const endpoint: ProxyEndpoint = { ip: '127.79.201.12', port: echo.address().port, viaPeerId: null }
    await proxy.apply([{ ...servicePort('kube-system/dns:53/UDP', '127.77.201.9', 5353, [endpoint]), protocol: 'UDP' }])
    for (const name of ['one', 'two']) {
      const client = createSocket('udp4')
      udpSockets.push(client)
      const reply = new Promise<{ text: string; from: string }>((resolve) =>
        client.once('message', (msg, from) => resolve({ text: msg.toString(), from: `${from.address}:${from.port}` })),
      )
      client.send(name, 5353, '127.77.201.9')
      expect(await reply).toEqual({ text: `echo:${name}`, from: '127.77.201.9:5353' })
    }
  })
})

describe('incremental apply', () => {
  it('changes one entry of 1,000 in milliseconds, reusing every listener', async () => {
    const a = await namedEndpoint('a', '127.79.201.13')
    const b = await namedEndpoint('b', '127.79.201.14')
    const vipOf = (k: number): string => `127.77.${210 + Math.floor(k / 250)}.${(k % 250) + 1}`
    const table = Array.from({ length: 1000 }, (_, k) => servicePort(`ns/svc-${k}:80/TCP`, vipOf(k), 9000, [a]))
    const first = await proxy.apply(table)
    expect(first).toMatchObject({ opened: 1000, closed: 0, failed: [] })
    const listenersBefore = table.map((p) => proxy.listenersOf(p.id)[0])
    expect(await fetchText(vipOf(500), 9000)).toBe('a')

    const changed = table.map((p, k) => (k === 500 ? { ...p, endpoints: [b] } : { ...p, endpoints: [...p.endpoints] }))
    const startedMs = performance.now()
    const second = await proxy.apply(changed)
    const tookMs = performance.now() - startedMs
    expect(second).toEqual({ opened: 0, closed: 0, updated: 1, unchanged: 999, failed: [] })
    expect(tookMs).toBeLessThan(50)
    expect(table.every((p, k) => proxy.listenersOf(p.id)[0] === listenersBefore[k])).toBe(true)
    expect(await fetchText(vipOf(500), 9000)).toBe('b')
    expect(await fetchText(vipOf(501), 9000)).toBe('a')

    const third = await proxy.apply(changed.filter((_, k) => k !== 7))
    expect(third).toMatchObject({ opened: 0, closed: 1, updated: 0, unchanged: 999 })
    expect(proxy.listenersOf('ns/svc-7:80/TCP')).toEqual([])
  })
})
