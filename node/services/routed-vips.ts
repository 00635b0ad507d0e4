// Routed VIPs (a service CIDR outside 127/8) on this host's loopback as /32
// addresses, so the proxy can listen on them and containers in their own
// network namespace reach them through their gateway. Loopback VIPs need
// nothing: all of 127/8 already reaches lo. Adding addresses needs root; a
// peer without it says so once and serves the loopback part only.
import { execFile } from 'node:child_process'
import { promisify } from 'node:util'

const run = promisify(execFile)

/** `ip` calls at once while adding many VIPs. */
const ipCommandsInFlightMax = 8

export class RoutedVips {
  private readonly added = new Set<string>()
  private warned = false

  constructor(private readonly log: (line: string) => void) {}

  /** Adds what is missing of `vips` (127/8 ones skipped) and removes those no longer wanted. */
  async ensure(vips: readonly string[]): Promise<void> {
    const wanted = new Set(vips.filter((v) => !v.startsWith('127.')))
    const missing = [...wanted].filter((v) => !this.added.has(v))
    const gone = [...this.added].filter((v) => !wanted.has(v))
    if (missing.length > 0 && process.getuid?.() !== 0) {
      if (!this.warned) this.log(`service proxy: routed cluster IPs (${missing[0]}, ...) need root to be added to lo; only loopback VIPs are served (use a 127.x.y.z/16 --service-cidr without root)`)
      this.warned = true
      return
    }
    await this.each(missing, async (vip) => {
      await run('ip', ['addr', 'replace', `${vip}/32`, 'dev', 'lo'])
      this.added.add(vip)
    })
    await this.each(gone, async (vip) => {
      await run('ip', ['addr', 'del', `${vip}/32`, 'dev', 'lo']).catch(() => undefined)
      this.added.delete(vip)
    })
  }

  async removeAll(): Promise<void> {
    await this.ensure([])
  }

  private async each(vips: string[], task: (vip: string) => Promise<void>): Promise<void> {
    for (let k = 0; k < vips.length; k += ipCommandsInFlightMax) {
      await Promise.all(vips.slice(k, k + ipCommandsInFlightMax).map((v) => task(v).catch((err: Error) => this.log(`service proxy: ${v}: ${err.message}`))))
    }
  }
}
