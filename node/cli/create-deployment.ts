// shoal create deployment NAME --image=IMAGE [--image=...] [--replicas N]
// [--port P] [-- COMMAND [ARGS...]]: the Deployment `kubectl create deployment`
// builds, labelled app=NAME, with one container per image named after it.
import { parse, UsageError } from './args.js'
import { printResult, resultFormat } from './each-manifest.js'
import type { JsonObject } from './manifests.js'
import { resourcePath } from './resources.js'
import { Session, targetOptions } from './session.js'

/** kubectl's container name for an image: its last path part without tag or digest, `_` made `-`. */
export function containerNameOf(image: string): string {
  const last = image.slice(image.lastIndexOf('/') + 1)
  return last.split('@')[0]!.split(':')[0]!.replaceAll('_', '-')
}

function wholeNumber(text: string | undefined, flag: string, fallback: number, min: number): number {
  if (text === undefined) return fallback
  const n = Number(text)
  if (text === '' || !Number.isInteger(n) || n < min) throw new UsageError(`${flag} wants a whole number >= ${min}, not "${text}"`)
  return n
}

export function deploymentObject(name: string, images: string[], replicas: number, port: number, command: string[], namespace: string): JsonObject {
  const labels = { app: name }
  const containers: JsonObject[] = images.map((image) => ({ name: containerNameOf(image), image, resources: {} }))
  if (command.length > 0) containers[0]!.command = command
  if (port >= 0) containers[0]!.ports = [{ containerPort: port }]
  return {
    apiVersion: 'apps/v1',
    kind: 'Deployment',
    metadata: { name, namespace, labels },
    spec: { replicas, selector: { matchLabels: labels }, strategy: {}, template: { metadata: { labels }, spec: { containers } } },
  }
}

export async function createDeployment(args: string[]): Promise<number> {
  const dashes = args.indexOf('--')
  const command = dashes < 0 ? [] : args.slice(dashes + 1)
  const { values, positionals } = parse(dashes < 0 ? args : args.slice(0, dashes), {
    ...targetOptions,
    image: { type: 'string', multiple: true },
    replicas: { type: 'string', short: 'r' },
    port: { type: 'string' },
    output: { type: 'string', short: 'o' },
    'dry-run': { type: 'string' },
  })
  if (positionals.length !== 1) throw new UsageError('create deployment takes one name: shoal create deployment NAME --image=IMAGE [--replicas N] [--port P] [-- COMMAND [ARGS...]]')
  const images = values.image ?? []
  if (images.length === 0) throw new UsageError('create deployment needs --image=IMAGE')
  if (images.length > 1 && command.length > 0) throw new UsageError('cannot specify multiple --image options and command')
  const format = resultFormat(values.output)
  const dryRun = values['dry-run'] ?? 'none'
  if (!['none', 'client', 'server'].includes(dryRun)) throw new UsageError(`--dry-run must be none, client or server, not "${dryRun}"`)
  const session = await Session.open(values)
  const resource = (await session.resources()).resolve('deployments.apps')
  const object = deploymentObject(positionals[0]!, images, wholeNumber(values.replicas, '--replicas', 1, 0), wholeNumber(values.port, '--port', -1, -1), command, session.namespace)
  if (dryRun === 'client') {
    printResult(resource, object, 'created (dry run)', format)
    return 0
  }
  const query = { fieldValidation: 'Strict', ...(dryRun === 'server' ? { dryRun: 'All' } : {}) }
  const created = await session.json<JsonObject>(resourcePath(resource, session.namespace), { method: 'POST', body: object, query })
  printResult(resource, created, dryRun === 'server' ? 'created (server dry run)' : 'created', format)
  return 0
}
