// The replicated state machine the simulation runs on Raft: a string
// key-value map with put and append. Commands are JSON in entry data.
import type { Entry } from '../../consensus/types.js'

export interface KvCommand {
  op: 'put' | 'append'
  key: string
  value: string
  /** Who proposed it, for tracing a history back to the client. */
  clientId: number
}

const encoder = new TextEncoder()
const decoder = new TextDecoder()

export function encodeCommand(command: KvCommand): Uint8Array {
  return encoder.encode(JSON.stringify(command))
}

export function decodeCommand(data: Uint8Array): KvCommand | null {
  if (data.byteLength === 0) return null
  return JSON.parse(decoder.decode(data)) as KvCommand
}

export class KvStateMachine {
  private values = new Map<string, string>()

  apply(entry: Entry): void {
    if (entry.type !== 0) return
    const command = decodeCommand(entry.data)
    if (command === null) return
    const current = this.values.get(command.key) ?? ''
    this.values.set(command.key, command.op === 'put' ? command.value : current + command.value)
  }

  get(key: string): string {
    return this.values.get(key) ?? ''
  }

  snapshot(): Uint8Array {
    return encoder.encode(JSON.stringify([...this.values].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))))
  }

  restore(data: Uint8Array): void {
    this.values = new Map(data.byteLength === 0 ? [] : (JSON.parse(decoder.decode(data)) as [string, string][]))
  }

  fingerprint(): string {
    return decoder.decode(this.snapshot())
  }
}
