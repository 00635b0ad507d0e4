// The CRI log format kubelet reads (one line per write of a line):
//   <RFC3339Nano time> <stdout|stderr> <F|P> <text>
// `P` marks a fragment of a line too long to keep in memory; the fragments
// and the `F` that ends them make one line.
import type { LogLine } from './runtime.js'

export type LogStream = 'stdout' | 'stderr'

/** A line longer than this is written as `P` fragments of this size. */
export const logLineBytesMax = 16 * 1024

/** Now, in RFC 3339 with nanoseconds (microsecond precision: what `performance` offers). */
export function rfc3339NanoNow(): string {
  const nowNs = BigInt(Math.round((performance.timeOrigin + performance.now()) * 1000)) * 1000n
  const seconds = nowNs / 1_000_000_000n
  const fraction = (nowNs % 1_000_000_000n).toString().padStart(9, '0')
  return `${new Date(Number(seconds) * 1000).toISOString().slice(0, 19)}.${fraction}Z`
}

/** Milliseconds since the epoch of an RFC 3339 time with any number of fraction digits. */
export function rfc3339ToMs(time: string): number {
  const match = /^(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2})(?:\.(\d+))?Z$/.exec(time)
  if (match === null) return Number.NaN
  const fractionMs = Number(`0.${match[2] ?? '0'}`) * 1000
  return Date.parse(`${match[1]}Z`) + fractionMs
}

export function formatCriLine(time: string, stream: LogStream, partial: boolean, text: string): string {
  return `${time} ${stream} ${partial ? 'P' : 'F'} ${text}\n`
}

interface CriRecord {
  time: string
  stream: LogStream
  partial: boolean
  text: string
}

export function parseCriLine(line: string): CriRecord | undefined {
  const first = line.indexOf(' ')
  const second = line.indexOf(' ', first + 1)
  const third = line.indexOf(' ', second + 1)
  if (first < 0 || second < 0 || third < 0) return undefined
  const stream = line.slice(first + 1, second)
  const tag = line.slice(second + 1, third)
  if ((stream !== 'stdout' && stream !== 'stderr') || (tag !== 'F' && tag !== 'P')) return undefined
  return { time: line.slice(0, first), stream, partial: tag === 'P', text: line.slice(third + 1) }
}

/**
 * Turns CRI file text into LogLines, joining `P` fragments (per stream) to
 * the `F` that ends them. Text after the last newline is left for the next
 * call (a writer may be in the middle of a line).
 */
export class CriLineParser {
  private rest = ''
  private readonly fragments = new Map<LogStream, { time: string; text: string }>()

  push(text: string): LogLine[] {
    const all = this.rest + text
    const end = all.lastIndexOf('\n')
    this.rest = all.slice(end + 1)
    if (end < 0) return []
    const lines: LogLine[] = []
    for (const raw of all.slice(0, end).split('\n')) {
      const record = parseCriLine(raw)
      if (record === undefined) continue
      const fragment = this.fragments.get(record.stream)
      const time = fragment?.time ?? record.time
      const joined = (fragment?.text ?? '') + record.text
      if (record.partial) {
        this.fragments.set(record.stream, { time, text: joined })
        continue
      }
      this.fragments.delete(record.stream)
      lines.push({ time, stream: record.stream, text: joined })
    }
    return lines
  }
}
