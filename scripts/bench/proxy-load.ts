// Child process of `npm run bench -- proxy`: the load generator, alone on its
// event loop so it never competes with the proxy it measures for one.
// argv: HOST PORT MODE(bulk|rr) CONNECTIONS SECONDS WARMUP_SECONDS. Prints one JSON result.
//   bulk: every connection writes 64 KiB chunks as fast as the path takes them; the
//         echoed bytes received per second are the throughput (reads go into a reused buffer).
//   rr:   every connection sends 1 KiB and waits for its echo, again and again; latencies.
import { connect, type Socket } from 'node:net'

const [host = '127.0.0.1', portText = '0', mode = 'rr', connectionsText = '64', secondsText = '5', warmupText = '1'] = process.argv.slice(2)
const port = Number(portText)
const connections = Number(connectionsText)
const bulkChunkBytes = 64 * 1024
const requestBytes = 1024
/** Latency samples kept at most (the window is seconds long; a sample is 8 bytes). */
const samplesMax = 5_000_000

function open(onread?: { buffer: Buffer; callback: (bytes: number) => boolean }): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host, port, noDelay: true, ...(onread === undefined ? {} : { onread }) })
    socket.once('connect', () => {
      socket.removeListener('error', reject)
      resolve(socket)
    })
    socket.once('error', reject)
  })
}

async function bulk(seconds: number, warmupSeconds: number): Promise<Record<string, number>> {
  let received = 0
  const chunk = Buffer.alloc(bulkChunkBytes, 7)
  const sockets: Socket[] = []
  const pumps: Array<() => void> = []
  for (let k = 0; k < connections; k++) {
    const readInto = Buffer.allocUnsafe(bulkChunkBytes)
    const socket = await open({ buffer: readInto, callback: (bytes) => ((received += bytes), true) })
    socket.on('error', () => undefined)
    const pump = (): void => {
      while (!socket.destroyed && socket.write(chunk));
    }
    socket.on('drain', pump)
    sockets.push(socket)
    pumps.push(pump)
  }
  for (const pump of pumps) pump()
  await new Promise((r) => setTimeout(r, warmupSeconds * 1000))
  const before = received
  const started = performance.now()
  await new Promise((r) => setTimeout(r, seconds * 1000))
  const elapsedS = (performance.now() - started) / 1000
  const bytes = received - before
  for (const s of sockets) s.destroy()
  return { bytesPerSec: bytes / elapsedS, bytes, seconds: elapsedS }
}

async function requestResponse(seconds: number, warmupSeconds: number): Promise<Record<string, number>> {
  const request = Buffer.alloc(requestBytes, 7)
  const latenciesMs: number[] = []
  let measuring = false
  let stopped = false
  let requests = 0
  const sockets: Socket[] = []
  const loop = async (): Promise<void> => {
    const socket = await open()
    sockets.push(socket)
    socket.on('error', () => undefined)
    let got = 0
    let sentAt = 0
    const send = (): void => {
      got = 0
      sentAt = performance.now()
      socket.write(request)
    }
    socket.on('data', (data: Buffer) => {
      got += data.byteLength
      if (got < requestBytes) return
      if (measuring && latenciesMs.length < samplesMax) {
        latenciesMs.push(performance.now() - sentAt)
        requests++
      }
      if (!stopped) send()
    })
    send()
  }
  await Promise.all(Array.from({ length: connections }, loop))
  await new Promise((r) => setTimeout(r, warmupSeconds * 1000))
  measuring = true
  const started = performance.now()
  await new Promise((r) => setTimeout(r, seconds * 1000))
  measuring = false
  stopped = true
  const elapsedS = (performance.now() - started) / 1000
  for (const s of sockets) s.destroy()
  latenciesMs.sort((a, b) => a - b)
  const at = (p: number): number => latenciesMs[Math.min(latenciesMs.length - 1, Math.floor((p / 100) * latenciesMs.length))] ?? NaN
  return { requestsPerSec: requests / elapsedS, p50Ms: at(50), p99Ms: at(99), samples: latenciesMs.length }
}

const seconds = Number(secondsText)
const warmupSeconds = Number(warmupText)
const result = mode === 'bulk' ? await bulk(seconds, warmupSeconds) : await requestResponse(seconds, warmupSeconds)
console.log(JSON.stringify(result))
process.exit(0)
