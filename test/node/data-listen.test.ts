// `shoal up --data-listen`: where other peers' proxies connect to reach this
// peer's pods over TLS. A firewall between hosts needs it on a known port.
import { spawnSync } from 'node:child_process'
import { connect } from 'node:net'
import { afterAll, describe, expect, it } from 'vitest'
import { freePort, ProcessCluster, until } from './process-cluster.js'

const cli = new URL('../../node/cli/main.ts', import.meta.url).pathname
let cluster: ProcessCluster | undefined

afterAll(async () => {
  await cluster?.destroy()
})

function accepts(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ host: '127.0.0.1', port }, () => {
      socket.destroy()
      resolve(true)
    })
    socket.once('error', () => resolve(false))
  })
}

describe('shoal up --data-listen', () => {
  it('listens for the peer data path on the port given', async () => {
    cluster = await ProcessCluster.create()
    const peer = await cluster.add('d1')
    const dataPort = await freePort()
    cluster.start(peer, ['--proxy-mode', 'userspace', '--service-cidr', '127.78.0.0/24', '--data-listen', `127.0.0.1:${dataPort}`])
    await cluster.tokenOf(peer)
    await until(async () => ((await accepts(dataPort)) ? true : undefined), 20_000, `d1's data path on port ${dataPort}`)
    expect(peer.output).not.toMatch(/peer data path cannot listen/)
  }, 40_000)

  it('refuses an address it cannot parse, with a usage error', () => {
    const result = spawnSync(process.execPath, ['--import', 'tsx', cli, 'up', '--data-listen', 'somewhere'], { encoding: 'utf8', timeout: 20_000 })
    expect(result.status).toBe(2)
    expect(result.stderr).toMatch(/--data-listen/)
  }, 30_000)
})
