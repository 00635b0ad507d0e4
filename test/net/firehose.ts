// A TCP server that writes `totalBytes` to each connection as fast as the
// connection takes them (pausing on backpressure), then ends it: for tests of
// what holds a fast sender back.
import { createServer, type Server } from 'node:net'

export interface Firehose {
  server: Server
  /** Bytes handed to sockets so far (across connections). */
  writtenBytes(): number
}

export function firehose(totalBytes: number, fill: number): Firehose {
  const chunk = Buffer.alloc(64 * 1024, fill)
  let written = 0
  const server = createServer((s) => {
    s.on('error', () => undefined)
    const pump = (): void => {
      while (written < totalBytes) {
        written += chunk.byteLength
        if (!s.write(chunk)) return void s.once('drain', pump)
      }
      s.end()
    }
    pump()
  })
  return { server, writtenBytes: () => written }
}
