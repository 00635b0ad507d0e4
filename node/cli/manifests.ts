// -f FILE|DIR|-: the objects in manifests, as kubectl reads them. YAML streams
// (documents separated by ---), JSON (one value or several in a row), and List
// objects (kind: List, or a typed list such as PodList) flattened to their items.
// A directory means its .yaml, .yml and .json files, in name order.
import { readdir, readFile, stat } from 'node:fs/promises'
import { extname, join } from 'node:path'
import { parseAllDocuments } from 'yaml'

export type JsonObject = Record<string, unknown>

export interface Manifest {
  object: JsonObject & { apiVersion: string; kind: string; metadata: JsonObject & { name?: string; namespace?: string } }
  /** The file it came from (STDIN for -). */
  source: string
}

export class ManifestError extends Error {
  override readonly name = 'ManifestError'
}

const manifestExtensions = new Set(['.yaml', '.yml', '.json'])
/** Lists inside lists are flattened this deep, no deeper. */
const listNestingMax = 8

export function isJsonObject(v: unknown): v is JsonObject {
  return typeof v === 'object' && v !== null && !Array.isArray(v)
}

/** Split a stream of JSON values written one after another ({...}{...} or one per line). */
function splitJsonStream(text: string): string[] {
  const values: string[] = []
  let depth = 0
  let start = -1
  let inString = false
  for (let i = 0; i < text.length; i++) {
    const ch = text[i]!
    if (inString) {
      if (ch === '\\') i++
      else if (ch === '"') inString = false
      continue
    }
    if (ch === '"') inString = true
    else if (ch === '{' || ch === '[') {
      if (depth === 0) start = i
      depth++
    } else if (ch === '}' || ch === ']') {
      depth--
      if (depth === 0) values.push(text.slice(start, i + 1))
    } else if (depth === 0 && !/\s/.test(ch)) {
      throw new SyntaxError(`unexpected "${ch}" between JSON values at offset ${i}`)
    }
  }
  if (depth !== 0) throw new SyntaxError('unexpected end of JSON input')
  return values
}

function parseDocuments(text: string, source: string): unknown[] {
  const trimmed = text.trimStart()
  if (trimmed.startsWith('{') || trimmed.startsWith('[')) {
    try {
      return splitJsonStream(trimmed).map((v) => JSON.parse(v) as unknown)
    } catch (err) {
      throw new ManifestError(`error parsing ${source}: invalid JSON: ${(err as Error).message}`)
    }
  }
  const docs = parseAllDocuments(text, { merge: true, prettyErrors: true })
  const list = Array.isArray(docs) ? docs : []
  const values: unknown[] = []
  for (const doc of list) {
    const error = doc.errors[0]
    if (error !== undefined) throw new ManifestError(`error parsing ${source}: ${(error.message.split('\n')[0] ?? '').trim().replace(/:$/, '')}`)
    values.push(doc.toJS({ maxAliasCount: 100 }) as unknown)
  }
  return values
}

function flatten(value: unknown, source: string, depth: number, out: Manifest[]): void {
  if (value === null || value === undefined) return
  if (!isJsonObject(value)) throw new ManifestError(`error validating ${source}: a manifest must be an object with apiVersion, kind and metadata, not ${Array.isArray(value) ? 'a list' : JSON.stringify(value)}`)
  const kind = value.kind
  if (typeof kind === 'string' && kind.endsWith('List') && Array.isArray(value.items)) {
    if (depth >= listNestingMax) throw new ManifestError(`error validating ${source}: lists nested more than ${listNestingMax} deep`)
    const itemKind = kind === 'List' ? undefined : kind.slice(0, -'List'.length)
    for (const item of value.items as unknown[]) {
      // Items of a typed list (PodList) may leave out what the list already says.
      const filled = isJsonObject(item) && itemKind !== undefined ? { apiVersion: value.apiVersion, kind: itemKind, ...item } : item
      flatten(filled, source, depth + 1, out)
    }
    return
  }
  const missing = [typeof value.apiVersion === 'string' && value.apiVersion !== '' ? null : 'apiVersion not set', typeof kind === 'string' && kind !== '' ? null : 'kind not set'].filter((m) => m !== null)
  if (missing.length > 0) throw new ManifestError(`error validating ${source}: error validating data: [${missing.join(', ')}]`)
  if (value.metadata !== undefined && !isJsonObject(value.metadata)) throw new ManifestError(`error validating ${source}: metadata must be an object`)
  out.push({ object: { ...value, metadata: value.metadata ?? {} } as Manifest['object'], source })
}

/** The objects in one manifest text (pure, for tests). */
export function parseManifests(text: string, source: string): Manifest[] {
  const out: Manifest[] = []
  for (const value of parseDocuments(text, source)) flatten(value, source, 0, out)
  return out
}

async function readStdin(): Promise<string> {
  const chunks: Buffer[] = []
  for await (const chunk of process.stdin) chunks.push(chunk as Buffer)
  return Buffer.concat(chunks).toString('utf8')
}

/** The files a -f value stands for: itself, or a directory's manifests in name order. */
async function filesOf(path: string): Promise<string[]> {
  const info = await stat(path).catch(() => null)
  if (info === null) throw new ManifestError(`the path "${path}" does not exist`)
  if (!info.isDirectory()) return [path]
  const names = (await readdir(path)).filter((n) => manifestExtensions.has(extname(n).toLowerCase())).sort()
  if (names.length === 0) throw new ManifestError(`error reading ${path}: no manifests in it (recognized file extensions are .json, .yaml, .yml)`)
  return names.map((n) => join(path, n))
}

/** Every object the -f values name, in order. */
export async function readManifests(paths: readonly string[]): Promise<Manifest[]> {
  const out: Manifest[] = []
  for (const path of paths) {
    if (path === '-') {
      out.push(...parseManifests(await readStdin(), 'STDIN'))
      continue
    }
    for (const file of await filesOf(path)) out.push(...parseManifests(await readFile(file, 'utf8'), file))
  }
  return out
}
