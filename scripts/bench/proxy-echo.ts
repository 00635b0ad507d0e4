// Child process of `npm run bench -- proxy`: the "pod", a TCP echo server.
// argv: HOST. Prints {"port": N} once listening; exits when stdin closes.
// The same server answers every case the bench compares, so its cost is common to all.
import { createServer } from 'node:net'

const host = process.argv[2] ?? '127.0.0.1'

const server = createServer({ allowHalfOpen: true, noDelay: true, highWaterMark: 256 * 1024 }, (socket) => {
  socket.on('error', () => undefined)
  socket.on('data', (chunk: Buffer) => {
    if (!socket.write(chunk)) socket.pause()
  })
  socket.on('drain', () => socket.resume())
  socket.on('end', () => socket.end())
})
server.listen({ host, port: 0 }, () => {
  const address = server.address()
  console.log(JSON.stringify({ port: typeof address === 'object' && address !== null ? address.port : 0 }))
})
process.stdin.on('end', () => process.exit(0)).resume()
process.on('SIGTERM', () => process.exit(0))
