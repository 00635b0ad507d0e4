// Reading request bodies: at most 3 MiB (as Kubernetes), JSON or YAML, and,
// for strict field validation, duplicate keys found before JSON.parse keeps
// only the last one.
import type { IncomingMessage } from 'node:http'
import { parse as parseYaml } from 'yaml'
import { StatusError, badRequest } from './status.js'

export const requestBodyMaxBytes = 3 * 1024 * 1024

export async function readBody(req: IncomingMessage): Promise<string> {
  return (await readBodyBytes(req)).toString('utf8')
}

/** The body as bytes (protobuf bodies are not text). */
export function readBodyBytes(req: IncomingMessage): Promise<Buffer> {
  const declared = Number(req.headers['content-length'] ?? 0)
  if (declared > requestBodyMaxBytes) return Promise.reject(tooLarge())
  // Events rather than an async iterator: this runs for every write, and the iterator costs more than the body.
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = []
    let size = 0
    const onData = (chunk: Buffer): void => {
      size += chunk.byteLength
      if (size > requestBodyMaxBytes) {
        req.off('data', onData)
        req.pause()
        reject(tooLarge())
        return
      }
      chunks.push(chunk)
    }
    req.on('data', onData)
    req.once('end', () => resolve(chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks)))
    req.once('error', reject)
  })
}

function tooLarge(): StatusError {
  return new StatusError(413, 'RequestEntityTooLarge', `the request is larger than ${requestBodyMaxBytes} bytes`)
}

export interface ParsedBody {
  value: unknown
  /** Keys that occur twice in one object, as paths (JSON bodies only). */
  duplicateFields: string[]
}

/** A JSON or YAML body as a value, or 400 BadRequest with the parser's complaint. */
export function parseBody(text: string, contentType: string | undefined): ParsedBody {
  const type = (contentType ?? 'application/json').split(';')[0]!.trim().toLowerCase()
  if (text.trim() === '') throw badRequest('the request body is empty')
  if (type === 'application/yaml' || type === 'application/x-yaml' || type === 'text/yaml') {
    try {
      return { value: parseYaml(text, { uniqueKeys: true }) as unknown, duplicateFields: [] }
    } catch (err) {
      throw badRequest(`the YAML body cannot be parsed: ${(err as Error).message.split('\n')[0]}`)
    }
  }
  try {
    return { value: JSON.parse(text) as unknown, duplicateFields: findDuplicateKeys(text) }
  } catch (err) {
    throw badRequest(`the JSON body cannot be parsed: ${(err as Error).message}`)
  }
}

/** Scan valid JSON text for object keys that repeat within one object. */
export function findDuplicateKeys(text: string): string[] {
  const duplicates: string[] = []
  const stack: { keys: Set<string> | null; path: string; index: number; key: string | null }[] = []
  let expectKey = false
  let i = 0
  const pathOf = (frame: (typeof stack)[number], key: string): string => (frame.path === '' ? key : `${frame.path}.${key}`)
  const childPath = (): string => {
    const top = stack[stack.length - 1]
    if (top === undefined) return ''
    if (top.keys === null) return `${top.path}[${top.index}]`
    return top.key === null ? top.path : pathOf(top, top.key)
  }
  while (i < text.length) {
    const ch = text[i]!
    if (ch === '"') {
      const end = scanString(text, i)
      if (expectKey) {
        const top = stack[stack.length - 1]!
        const key = JSON.parse(text.slice(i, end + 1)) as string
        if (top.keys!.has(key)) duplicates.push(pathOf(top, key))
        top.keys!.add(key)
        top.key = key
        expectKey = false
      }
      i = end + 1
      continue
    }
    if (ch === '{' || ch === '[') {
      stack.push({ keys: ch === '{' ? new Set() : null, path: childPath(), index: 0, key: null })
      expectKey = ch === '{'
    } else if (ch === '}' || ch === ']') {
      stack.pop()
    } else if (ch === ',') {
      const top = stack[stack.length - 1]
      if (top?.keys === null) top.index++
      else expectKey = true
    }
    i++
  }
  return duplicates
}

function scanString(text: string, start: number): number {
  let i = start + 1
  while (i < text.length) {
    if (text[i] === '\\') i += 2
    else if (text[i] === '"') return i
    else i++
  }
  return i
}
