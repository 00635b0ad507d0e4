// The small messages of /shoal/tunnel/1 and of the peer data path
// (net/peer-data.ts), which uses the same target request and answer on its
// TLS connections.
//
// Target request: [version=1][ip length u8][ip ASCII][port u16 BE].
// Answer: [0] for OK, or [1][length u16 BE][JSON {name, message, code}].
// Data-path offer request (tunnel stream only): [version=2]. Its answer:
// [0][port u16 BE][identity length u8][identity ASCII][key length u8][key],
// or a failure as above (an older peer aborts the stream: "unknown tunnel version").
import { isIP } from 'node:net'
import type { Uint8ArrayList } from 'uint8arraylist'
import { RemoteError } from './rpc.js'

export const targetRequestVersion = 1
export const offerRequestVersion = 2
/** Longest request header (version, length, an IPv6 address, port); more is a protocol error. */
const requestBytesMax = 2 + 45 + 2
/** Longest failure answer a caller reads. */
const answerBytesMax = 4096
/** Longest PSK identity or key in an offer. */
const offerFieldBytesMax = 64

export class TunnelProtocolError extends Error {
  override readonly name = 'TunnelProtocolError'
}

export interface TargetRequest {
  ip: string
  port: number
  /** What followed the request. */
  leftover: Uint8Array
}

/** What a peer offers for its data path: its TLS listener's port and a pre-shared key for the caller. */
export interface DataPathOffer {
  port: number
  identity: string
  key: Uint8Array
}

export function encodeTargetRequest(ip: string, port: number): Uint8Array {
  const ipBytes = Buffer.from(ip, 'ascii')
  const out = Buffer.alloc(2 + ipBytes.byteLength + 2)
  out[0] = targetRequestVersion
  out[1] = ipBytes.byteLength
  ipBytes.copy(out, 2)
  out.writeUInt16BE(port, 2 + ipBytes.byteLength)
  return out
}

/** The request and what followed it, or null while incomplete; throws on a malformed one. Offers: `offer`. */
export function decodeRequest(buf: Uint8ArrayList): TargetRequest | { offer: true; leftover: Uint8Array } | null {
  if (buf.byteLength < 1) return null
  if (buf.get(0) === offerRequestVersion) return { offer: true, leftover: buf.subarray(1) }
  return decodeTargetRequest(buf)
}

/** A target request (version 1 only), or null while incomplete; throws on a malformed one. */
export function decodeTargetRequest(buf: Uint8ArrayList): TargetRequest | null {
  if (buf.byteLength < 2) return null
  if (buf.get(0) !== targetRequestVersion) throw new TunnelProtocolError(`unknown tunnel version ${buf.get(0)}`)
  const ipLength = buf.get(1)
  if (ipLength > requestBytesMax - 4) throw new TunnelProtocolError('tunnel request too long')
  if (buf.byteLength < 2 + ipLength + 2) return null
  const bytes = buf.subarray()
  const ip = Buffer.from(bytes.subarray(2, 2 + ipLength)).toString('ascii')
  const port = (bytes[2 + ipLength]! << 8) | bytes[3 + ipLength]!
  if (isIP(ip) === 0 || port === 0) throw new TunnelProtocolError(`bad tunnel target ${ip}:${port}`)
  return { ip, port, leftover: bytes.subarray(4 + ipLength) }
}

export function failureAnswer(err: Error & { code?: unknown }): Uint8Array {
  const body = Buffer.from(JSON.stringify({ name: err.name, message: err.message, code: typeof err.code === 'string' ? err.code : undefined }))
  const out = Buffer.alloc(3 + body.byteLength)
  out[0] = 1
  out.writeUInt16BE(body.byteLength, 1)
  body.copy(out, 3)
  return out
}

/** A failure answer from its bytes after the leading 1, or null while incomplete. */
function decodeFailure(bytes: Uint8Array): RemoteError | null {
  if (bytes.byteLength < 3) return null
  const length = (bytes[1]! << 8) | bytes[2]!
  if (length > answerBytesMax) throw new TunnelProtocolError('tunnel failure answer too long')
  if (bytes.byteLength < 3 + length) return null
  const f = JSON.parse(Buffer.from(bytes.subarray(3, 3 + length)).toString()) as { name: string; message: string; code?: string }
  return new RemoteError(f.name, f.message, f.code === undefined ? {} : { code: f.code })
}

/** OK (with what followed it), a failure, or null while incomplete. */
export function decodeAnswer(buf: Uint8ArrayList): { leftover: Uint8Array } | RemoteError | null {
  if (buf.byteLength < 1) return null
  const bytes = buf.subarray()
  if (bytes[0] === 0) return { leftover: bytes.subarray(1) }
  if (bytes[0] !== 1) throw new TunnelProtocolError(`unknown tunnel answer ${bytes[0]}`)
  return decodeFailure(bytes)
}

export function encodeOfferAnswer(offer: DataPathOffer): Uint8Array {
  const identity = Buffer.from(offer.identity, 'ascii')
  const out = Buffer.alloc(1 + 2 + 1 + identity.byteLength + 1 + offer.key.byteLength)
  out.writeUInt16BE(offer.port, 1)
  out[3] = identity.byteLength
  identity.copy(out, 4)
  out[4 + identity.byteLength] = offer.key.byteLength
  out.set(offer.key, 5 + identity.byteLength)
  return out
}

/** An offer, a failure, or null while incomplete. */
export function decodeOfferAnswer(buf: Uint8ArrayList): DataPathOffer | RemoteError | null {
  if (buf.byteLength < 1) return null
  const bytes = buf.subarray()
  if (bytes[0] === 1) return decodeFailure(bytes)
  if (bytes[0] !== 0) throw new TunnelProtocolError(`unknown offer answer ${bytes[0]}`)
  if (bytes.byteLength < 4) return null
  const identityLength = bytes[3]!
  if (identityLength > offerFieldBytesMax) throw new TunnelProtocolError('offer identity too long')
  if (bytes.byteLength < 5 + identityLength) return null
  const keyLength = bytes[4 + identityLength]!
  if (keyLength > offerFieldBytesMax) throw new TunnelProtocolError('offer key too long')
  if (bytes.byteLength < 5 + identityLength + keyLength) return null
  const port = (bytes[1]! << 8) | bytes[2]!
  const identity = Buffer.from(bytes.subarray(4, 4 + identityLength)).toString('ascii')
  return { port, identity, key: Uint8Array.from(bytes.subarray(5 + identityLength, 5 + identityLength + keyLength)) }
}
