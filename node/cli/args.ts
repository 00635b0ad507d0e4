// Shared CLI argument handling: one clear line and a non-zero exit on bad input.
import { parseArgs, type ParseArgsConfig } from 'node:util'

export class UsageError extends Error {
  override readonly name = 'UsageError'
}

export function parse<T extends NonNullable<ParseArgsConfig['options']>>(args: string[], options: T): ReturnType<typeof parseArgs<{ args: string[]; options: T; allowPositionals: true }>> {
  try {
    return parseArgs({ args, options, allowPositionals: true })
  } catch (err) {
    // Node's own wording for an unknown flag runs to three lines of advice; one clear line is enough.
    const unknown = /^Unknown option '([^']+)'/.exec((err as Error).message)
    throw new UsageError(unknown === null ? (err as Error).message : `unknown flag ${unknown[1]}`)
  }
}

/** HOST:PORT or a multiaddr, as a libp2p listen address. */
export function toMultiaddr(value: string): string {
  if (value.startsWith('/')) return value
  const m = /^(\d{1,3}(?:\.\d{1,3}){3}|\[[0-9a-fA-F:]+\]|localhost):(\d{1,5})$/.exec(value)
  if (m === null) throw new UsageError(`--listen wants HOST:PORT or a multiaddr, not "${value}"`)
  const host = m[1] === 'localhost' ? '127.0.0.1' : m[1]!
  return host.startsWith('[') ? `/ip6/${host.slice(1, -1)}/tcp/${m[2]}` : `/ip4/${host}/tcp/${m[2]}`
}

export function hostPort(value: string, flag: string): { host: string; port: number } {
  const m = /^(.+):(\d{1,5})$/.exec(value)
  const port = Number(m?.[2])
  if (m === null || port > 65535) throw new UsageError(`${flag} wants HOST:PORT, not "${value}"`)
  return { host: m[1]!.replace(/^\[|\]$/g, ''), port }
}
