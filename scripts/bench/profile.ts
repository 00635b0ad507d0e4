// --profile: sample the CPU while a bench runs and print where the time went,
// by function, as JSON lines (the full .cpuprofile is written for DevTools too).
import { writeFile } from 'node:fs/promises'
import { Session } from 'node:inspector/promises'
import { report, round } from './report.js'

interface ProfileNode {
  id: number
  callFrame: { functionName: string; url: string; lineNumber: number }
  hitCount?: number
}

export async function profileWhile<T>(name: string, run: () => Promise<T>): Promise<T> {
  const session = new Session()
  session.connect()
  await session.post('Profiler.enable')
  await session.post('Profiler.start')
  const result = await run()
  const { profile } = await session.post('Profiler.stop')
  const path = `bench-${name}.cpuprofile`
  await writeFile(path, JSON.stringify(profile))
  const nodes = profile.nodes as ProfileNode[]
  const total = nodes.reduce((sum, n) => sum + (n.hitCount ?? 0), 0)
  const byFunction = new Map<string, number>()
  for (const n of nodes) {
    const file = n.callFrame.url.replace(/^.*\/(node_modules\/[^/]+|[^/]+\/[^/]+)$/, '$1')
    const key = `${n.callFrame.functionName || '(anonymous)'} ${file}:${n.callFrame.lineNumber + 1}`
    byFunction.set(key, (byFunction.get(key) ?? 0) + (n.hitCount ?? 0))
  }
  const top = [...byFunction].sort((a, b) => b[1] - a[1]).slice(0, 15)
  for (const [fn, hits] of top) report({ bench: name, profile: fn, selfPercent: round((100 * hits) / total, 1) })
  report({ bench: name, profileWritten: path })
  session.disconnect()
  return result
}
