// @ts-check
// A minimal Redis client: one command per TCP connection, spoken in RESP
// (https://redis.io/docs/reference/protocol-spec/). One connection per command
// keeps the guestbook simple and follows a master that moves: every command
// dials the service address afresh.
import { connect } from 'node:net'

/** A reply larger than this is refused (the guestbook keeps a bounded list). */
const replyBytesMax = 4 * 1024 * 1024

export class RedisReplyError extends Error {
  name = 'RedisReplyError'
}

export class RedisConnectionError extends Error {
  name = 'RedisConnectionError'
}

/**
 * Sends one command and resolves with its reply: a string, a number, null,
 * or an array of those. An error reply rejects with RedisReplyError, a
 * network failure or timeout with RedisConnectionError.
 * @param {{ host: string, port: number }} address
 * @param {string[]} args
 * @param {number} timeoutMs
 * @returns {Promise<unknown>}
 */
export function redisCommand(address, args, timeoutMs) {
  return new Promise((resolve, reject) => {
    const socket = connect({ host: address.host, port: address.port })
    let buffered = Buffer.alloc(0)
    let settled = false
    /** @param {() => void} settle */
    const finish = (settle) => {
      if (settled) return
      settled = true
      socket.destroy()
      settle()
    }
    socket.setTimeout(timeoutMs, () => finish(() => reject(new RedisConnectionError(`redis ${address.host}:${address.port}: no answer within ${timeoutMs} ms`))))
    socket.on('error', (err) => finish(() => reject(new RedisConnectionError(`redis ${address.host}:${address.port}: ${err.message}`))))
    socket.on('close', () => finish(() => reject(new RedisConnectionError(`redis ${address.host}:${address.port}: connection closed before the reply`))))
    socket.on('data', (chunk) => {
      buffered = Buffer.concat([buffered, chunk])
      if (buffered.length > replyBytesMax) return finish(() => reject(new RedisConnectionError(`redis reply over ${replyBytesMax} bytes`)))
      const parsed = parseReply(buffered, 0)
      if (parsed === undefined) return
      const { value } = parsed
      finish(() => (value instanceof RedisReplyError ? reject(value) : resolve(value)))
    })
    socket.write(encodeCommand(args))
  })
}

/** @param {string[]} args */
export function encodeCommand(args) {
  const parts = [`*${args.length}\r\n`]
  for (const arg of args) parts.push(`$${Buffer.byteLength(arg)}\r\n${arg}\r\n`)
  return parts.join('')
}

/**
 * One reply starting at `offset`, or undefined when more bytes are needed.
 * @param {Buffer} buffer
 * @param {number} offset
 * @returns {{ value: unknown, end: number } | undefined}
 */
export function parseReply(buffer, offset) {
  const lineEnd = buffer.indexOf('\r\n', offset)
  if (lineEnd < 0) return undefined
  const type = String.fromCharCode(buffer[offset] ?? 0)
  const line = buffer.toString('utf8', offset + 1, lineEnd)
  const next = lineEnd + 2
  switch (type) {
    case '+':
      return { value: line, end: next }
    case '-':
      return { value: new RedisReplyError(line), end: next }
    case ':':
      return { value: Number(line), end: next }
    case '$': {
      const length = Number(line)
      if (length < 0) return { value: null, end: next }
      if (buffer.length < next + length + 2) return undefined
      return { value: buffer.toString('utf8', next, next + length), end: next + length + 2 }
    }
    case '*': {
      const count = Number(line)
      if (count < 0) return { value: null, end: next }
      const items = []
      let at = next
      for (let k = 0; k < count; k++) {
        const item = parseReply(buffer, at)
        if (item === undefined) return undefined
        items.push(item.value)
        at = item.end
      }
      return { value: items, end: at }
    }
    default:
      return { value: new RedisReplyError(`unexpected reply type ${JSON.stringify(type)}`), end: buffer.length }
  }
}
