// shoal rollout status|history|undo|pause|resume|restart deployment/NAME, as
// kubectl rollout: pause and resume patch spec.paused, restart stamps the pod
// template with kubectl.kubernetes.io/restartedAt so every pod is replaced.
import { parse, UsageError } from './args.js'
import { nameOf } from './object-print.js'
import { requireDeployment, RolloutError, rolloutHistory, rolloutUndo } from './rollout-history.js'
import { rolloutStatus } from './rollout-status.js'
import { Session, targetOptions } from './session.js'
import { durationMs, namedWorkload, type NamedWorkload, type WorkloadObject } from './workload.js'

const usage = 'usage: shoal rollout status|history|undo|pause|resume|restart deployment/NAME [flags]'

function revisionFlag(text: string | undefined, flag: string): number {
  if (text === undefined) return 0
  if (!/^-?\d+$/.test(text)) throw new UsageError(`${flag} wants a revision number, not "${text}"`)
  return Number(text)
}

async function setPaused(session: Session, target: NamedWorkload, paused: boolean): Promise<void> {
  requireDeployment(target, paused ? 'rollout pause' : 'rollout resume')
  const d = await session.json<WorkloadObject>(target.path)
  const kind = `${target.resource.plural}.${target.resource.group}`
  if (paused && d.spec?.paused === true) throw new RolloutError(`${kind} "${target.name}" is already paused`)
  if (!paused && d.spec?.paused !== true) throw new RolloutError(`${kind} "${target.name}" is not paused`)
  await session.json(target.path, { method: 'PATCH', body: { spec: { paused: paused ? true : null } }, contentType: 'application/strategic-merge-patch+json' })
  process.stdout.write(`${nameOf(target.resource, d)} ${paused ? 'paused' : 'resumed'}\n`)
}

async function restart(session: Session, target: NamedWorkload): Promise<void> {
  requireDeployment(target, 'rollout restart')
  const d = await session.json<WorkloadObject>(target.path)
  if (d.spec?.paused === true) throw new RolloutError(`can't restart paused deployment (run rollout resume first)`)
  const restartedAt = new Date().toISOString().replace(/\.\d{3}Z$/, 'Z')
  const patch = { spec: { template: { metadata: { annotations: { 'kubectl.kubernetes.io/restartedAt': restartedAt } } } } }
  await session.json(target.path, { method: 'PATCH', body: patch, contentType: 'application/strategic-merge-patch+json' })
  process.stdout.write(`${nameOf(target.resource, d)} restarted\n`)
}

export async function rollout(args: string[]): Promise<number> {
  const [sub, ...given] = args
  // kubectl's --watch is a boolean written --watch=false; parseArgs' booleans take no value.
  const rest = given.map((a) => (a === '--watch=false' || a === '-w=false' ? '--no-watch' : a === '--watch=true' ? '--watch' : a))
  const { values, positionals } = parse(rest, {
    ...targetOptions,
    revision: { type: 'string' },
    'to-revision': { type: 'string' },
    timeout: { type: 'string' },
    watch: { type: 'boolean', short: 'w' },
    'no-watch': { type: 'boolean' },
  })
  if (sub === undefined || !['status', 'history', 'undo', 'pause', 'resume', 'restart'].includes(sub)) throw new UsageError(usage)
  const session = await Session.open(values)
  const { target, rest: extra } = await namedWorkload(session, positionals, `rollout ${sub}`)
  if (extra.length > 0) throw new UsageError(`rollout ${sub} takes one resource, not also "${extra.join(' ')}"`)
  switch (sub) {
    case 'status': {
      const watch = values['no-watch'] !== true
      await rolloutStatus(session, target, { watch, timeoutMs: values.timeout === undefined ? 0 : durationMs(values.timeout, '--timeout'), revision: revisionFlag(values.revision, '--revision') })
      return 0
    }
    case 'history':
      await rolloutHistory(session, target, revisionFlag(values.revision, '--revision'))
      return 0
    case 'undo':
      await rolloutUndo(session, target, revisionFlag(values['to-revision'], '--to-revision'))
      return 0
    case 'restart':
      await restart(session, target)
      return 0
    default:
      await setPaused(session, target, sub === 'pause')
      return 0
  }
}
