// shoal describe: a readable, kubectl-like view of objects with their events.
// Output goes through the same tab alignment kubectl's describers use.
import { parse, UsageError } from './args.js'
import { DescribeWriter, metaOf, type DescribeContext } from './describe-common.js'
import { describers, genericDescriber } from './describe-kinds.js'
import type { JsonObject } from './manifests.js'
import { resourcePath } from './resources.js'
import { select, type Selection } from './selection.js'
import { ServerError, Session, targetOptions } from './session.js'

/** The named object; a name that matches nothing exactly describes the objects whose names start with it, as kubectl does. */
async function objectsOf(session: Session, sel: Selection, selector: string | undefined): Promise<JsonObject[]> {
  const list = async (): Promise<JsonObject[]> => (await session.json<{ items?: JsonObject[] }>(resourcePath(sel.resource, sel.namespace), { query: { labelSelector: selector } })).items ?? []
  if (sel.names === null) return list()
  const out: JsonObject[] = []
  for (const name of sel.names) {
    try {
      out.push(await session.json<JsonObject>(resourcePath(sel.resource, sel.namespace, name)))
    } catch (err) {
      if (!((err as Error).name === 'ServerError' && (err as ServerError).code === 404)) throw err
      const prefixed = (await list()).filter((o) => (metaOf(o).name ?? '').startsWith(name))
      if (prefixed.length === 0) throw err
      out.push(...prefixed)
    }
  }
  return out
}

export async function describe(args: string[]): Promise<number> {
  const { values, positionals } = parse(args, { ...targetOptions, 'all-namespaces': { type: 'boolean', short: 'A' }, selector: { type: 'string', short: 'l' }, filename: { type: 'string', short: 'f', multiple: true } })
  const session = await Session.open(values)
  const { selections } = await select(session, positionals, values.filename, 'describe')
  if (values.selector !== undefined && selections.some((s) => s.names !== null)) throw new UsageError('name objects or select them with -l, not both')
  const blocks: string[] = []
  let failed = 0
  for (const sel of selections) {
    let objects: JsonObject[]
    try {
      objects = await objectsOf(session, sel, values.selector)
    } catch (err) {
      if ((err as Error).name !== 'ServerError') throw err
      failed++
      process.stderr.write(`shoal describe: ${(err as Error).message}\n`)
      continue
    }
    for (const o of objects) {
      const ctx: DescribeContext = { session, resource: sel.resource, w: new DescribeWriter(), nowMs: Date.now() }
      await (describers[sel.resource.group === '' ? sel.resource.kind : `${sel.resource.kind}.${sel.resource.group}`] ?? genericDescriber)(ctx, o)
      blocks.push(ctx.w.toString())
    }
  }
  if (blocks.length > 0) process.stdout.write(blocks.join('\n'))
  else if (failed === 0) process.stderr.write(session.allNamespaces || !selections.every((s) => s.resource.namespaced) ? 'No resources found\n' : `No resources found in ${session.namespace} namespace.\n`)
  return failed > 0 ? 1 : 0
}
