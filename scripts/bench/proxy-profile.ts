// --profile for `npm run bench -- proxy`: where a child's CPU went, from the
// .cpuprofile node --cpu-prof wrote (self time by function, idle excluded).
import { readFile } from 'node:fs/promises'
import { round } from './report.js'

interface ProfileNode {
  callFrame: { functionName: string; url: string; lineNumber: number }
  hitCount?: number
}

export async function summarizeProfile(path: string, top: number): Promise<Array<{ function: string; selfPercentOfBusy: number; busyPercentOfRun?: number }>> {
  const profile = JSON.parse(await readFile(path, 'utf8')) as { nodes: ProfileNode[] }
  const self = new Map<string, number>()
  let total = 0
  for (const n of profile.nodes) {
    const hits = n.hitCount ?? 0
    total += hits
    const file = n.callFrame.url.replace(/^.*\/node_modules\//, '').replace(/^.*\/main\//, '')
    const key = `${n.callFrame.functionName || '(anonymous)'} ${file}:${n.callFrame.lineNumber + 1}`
    self.set(key, (self.get(key) ?? 0) + hits)
  }
  const idle = [...self].filter(([k]) => k.startsWith('(idle)')).reduce((sum, [, v]) => sum + v, 0)
  const busy = Math.max(1, total - idle)
  const rows: Array<{ function: string; selfPercentOfBusy: number; busyPercentOfRun?: number }> = [{ function: '(busy)', selfPercentOfBusy: 100, busyPercentOfRun: round((100 * busy) / Math.max(1, total), 1) }]
  for (const [fn, hits] of [...self].filter(([k]) => !k.startsWith('(idle)')).sort((a, b) => b[1] - a[1]).slice(0, top)) {
    rows.push({ function: fn, selfPercentOfBusy: round((100 * hits) / busy, 1) })
  }
  return rows
}
