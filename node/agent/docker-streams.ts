// Docker's multiplexed output streams (logs and exec of containers without a
// TTY): 8-byte frame headers naming stdout or stderr, then the payload. Turned
// here into frames, then into log lines with their timestamps.

import { StringDecoder } from 'node:string_decoder'
import type { LogLine } from './runtime.js'

export type OutputStreamName = 'stdout' | 'stderr'

export interface OutputFrame {
  stream: OutputStreamName
  data: Buffer
}

const frameHeaderBytes = 8
/** A line longer than this is cut into pieces (a program printing without newlines must not grow memory). */
export const logLineBytesMax = 256 * 1024

/** Splits a multiplexed stream into frames; a stream without headers (TTY) is all stdout. */
export class FrameDecoder {
  private pending: Buffer = Buffer.alloc(0)
  private headerless: boolean | undefined

  push(chunk: Buffer): OutputFrame[] {
    if (this.headerless === undefined && chunk.length > 0) this.headerless = !looksLikeFrameHeader(chunk)
    if (this.headerless === true) return chunk.length > 0 ? [{ stream: 'stdout', data: chunk }] : []
    this.pending = this.pending.length === 0 ? chunk : Buffer.concat([this.pending, chunk])
    const frames: OutputFrame[] = []
    while (this.pending.length >= frameHeaderBytes) {
      const size = this.pending.readUInt32BE(4)
      if (this.pending.length < frameHeaderBytes + size) break
      const stream: OutputStreamName = this.pending[0] === 2 ? 'stderr' : 'stdout'
      frames.push({ stream, data: this.pending.subarray(frameHeaderBytes, frameHeaderBytes + size) })
      this.pending = this.pending.subarray(frameHeaderBytes + size)
    }
    return frames
  }
}

function looksLikeFrameHeader(chunk: Buffer): boolean {
  if (chunk.length < 4) return chunk[0] !== undefined && chunk[0] <= 2
  return (chunk[0] ?? 3) <= 2 && chunk[1] === 0 && chunk[2] === 0 && chunk[3] === 0
}

/** Collects complete lines per stream; `flush` gives what is left without a newline. */
class LineSplitter {
  private partial = ''
  // Frames may end inside a multi-byte character.
  private readonly decoder = new StringDecoder('utf8')

  push(data: Buffer): string[] {
    const pieces = (this.partial + this.decoder.write(data)).split('\n')
    this.partial = pieces.pop() ?? ''
    while (this.partial.length > logLineBytesMax) {
      pieces.push(this.partial.slice(0, logLineBytesMax))
      this.partial = this.partial.slice(logLineBytesMax)
    }
    return pieces
  }

  flush(): string[] {
    const rest = this.partial + this.decoder.end()
    this.partial = ''
    return rest === '' ? [] : [rest]
  }
}

/** Log lines from a `logs` stream requested with `timestamps: true`. */
export async function* logLinesFrom(chunks: AsyncIterable<Buffer | string> | Iterable<Buffer | string>): AsyncGenerator<LogLine> {
  const decoder = new FrameDecoder()
  const splitters = { stdout: new LineSplitter(), stderr: new LineSplitter() }
  for await (const chunk of chunks) {
    for (const frame of decoder.push(typeof chunk === 'string' ? Buffer.from(chunk) : chunk)) {
      for (const line of splitters[frame.stream].push(frame.data)) yield parseLogLine(frame.stream, line)
    }
  }
  for (const stream of ['stdout', 'stderr'] as const) {
    for (const line of splitters[stream].flush()) yield parseLogLine(stream, line)
  }
}

function parseLogLine(stream: OutputStreamName, line: string): LogLine {
  const space = line.indexOf(' ')
  const time = space > 0 ? normalizeLogTime(line.slice(0, space)) : undefined
  if (time === undefined) return { time: normalizeLogTime(new Date().toISOString()) ?? '', stream, text: line }
  return { time, stream, text: line.slice(space + 1) }
}

const utcTimePattern = /^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.(\d{1,9}))?Z$/

/**
 * RFC 3339 with nanoseconds, as Kubernetes prints log times. Docker gives
 * nanoseconds; Podman's compatible API only whole seconds (padded here).
 */
export function normalizeLogTime(engineTime: string): string | undefined {
  const utc = utcTimePattern.exec(engineTime)
  if (utc !== null) return `${utc[1]}.${(utc[2] ?? '').padEnd(9, '0')}Z`
  const parsedMs = Date.parse(engineTime)
  if (Number.isNaN(parsedMs)) return undefined
  return normalizeLogTime(new Date(parsedMs).toISOString())
}

/** stdout and stderr of an exec in arrival order, keeping the first `bytesMax` bytes and draining the rest. */
export async function collectOutput(chunks: AsyncIterable<Buffer | string>, bytesMax: number): Promise<string> {
  const decoder = new FrameDecoder()
  const kept: Buffer[] = []
  let keptBytes = 0
  for await (const chunk of chunks) {
    for (const frame of decoder.push(typeof chunk === 'string' ? Buffer.from(chunk) : chunk)) {
      if (keptBytes >= bytesMax) continue
      const piece = frame.data.subarray(0, bytesMax - keptBytes)
      kept.push(piece)
      keptBytes += piece.length
    }
  }
  return Buffer.concat(kept).toString('utf8')
}
