// Length-prefixed frames on a libp2p 3 stream (an EventTarget whose send()
// returns false when its buffer is full). Many frames go out in one send():
// each send costs a yamux frame, a Noise seal and a socket write.
import type { Stream } from '@libp2p/interface'
import { LengthPrefixedDecoder } from '@libp2p/utils'

/** The most one read of a libp2p stream hands over at once, for the decoder's buffer bound. */
const arrivingChunkBytesMax = 1024 * 1024

export class FrameTooLargeError extends Error {
  override readonly name = 'FrameTooLargeError'
}

function varintLength(n: number): number {
  let length = 1
  while (n >= 0x80) {
    n = Math.floor(n / 128)
    length++
  }
  return length
}

function writeVarint(n: number, out: Uint8Array, offset: number): number {
  while (n >= 0x80) {
    out[offset++] = (n % 128) | 0x80
    n = Math.floor(n / 128)
  }
  out[offset++] = n
  return offset
}

/** One buffer holding every frame, each behind its unsigned-varint length. */
export function encodeFrames(frames: readonly Uint8Array[]): Uint8Array {
  let total = 0
  for (const f of frames) total += varintLength(f.byteLength) + f.byteLength
  const out = new Uint8Array(total)
  let offset = 0
  for (const f of frames) {
    offset = writeVarint(f.byteLength, out, offset)
    out.set(f, offset)
    offset += f.byteLength
  }
  return out
}

export interface FrameHandlers {
  onFrame: (frame: Uint8Array) => void
  onClose: (error: Error | undefined) => void
}

/** Read frames from a stream; a malformed or oversized frame aborts it. */
export function readFrames(stream: Stream, maxFrameBytes: number, handlers: FrameHandlers): void {
  // The decoder checks its whole buffer before taking frames out of it: one arriving chunk may hold many
  // small frames (we batch them), so the bound is a frame plus a chunk (Yamux messages are far smaller).
  const decoder = new LengthPrefixedDecoder({ maxDataLength: maxFrameBytes, maxBufferSize: maxFrameBytes + arrivingChunkBytesMax })
  stream.addEventListener('message', (evt) => {
    try {
      for (const frame of decoder.decode(evt.data)) handlers.onFrame(frame.subarray())
    } catch (err) {
      stream.abort(err as Error)
    }
  })
  // The remote finished writing: finish ours too, so the stream closes fully.
  stream.addEventListener('remoteCloseWrite', () => {
    stream.close().catch(() => {})
  })
  stream.addEventListener('close', (evt) => handlers.onClose(evt.error))
}

/** Send frames as one write; resolves once the stream can take more (backpressure). */
export async function sendFrames(stream: Stream, frames: readonly Uint8Array[], signal?: AbortSignal): Promise<void> {
  if (!stream.send(encodeFrames(frames))) await stream.onDrain(signal === undefined ? {} : { signal })
}
