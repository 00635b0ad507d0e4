// Host-wide loopback IP leases: unique across runtimes sharing a lease dir,
// stale leases (their pod gone from the owner's state dir) are reclaimed,
// live ones never, and the pool's end is a clear error.
import { mkdir, mkdtemp, rm, stat, writeFile } from 'node:fs/promises'
import { existsSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { LoopbackIps, loopbackAddresses, podRecordPath } from '../../node/agent/loopback-ips.js'

let root: string

beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), 'shoal-loopback-ips-'))
})

afterAll(async () => {
  await rm(root, { recursive: true, force: true })
})

async function markPodPresent(stateDir: string, uid: string): Promise<void> {
  await mkdir(join(stateDir, 'pods', uid), { recursive: true })
  await writeFile(podRecordPath(stateDir, uid), '{}')
}

describe('LoopbackIps', () => {
  it('skips .0, .255 and the gateway address', () => {
    const { first, usable } = loopbackAddresses('127.88.0.0/16')
    const ip = (a: number, b: number): number => first + a * 256 + b
    expect(usable(ip(0, 1))).toBe(false)
    expect(usable(ip(0, 0))).toBe(false)
    expect(usable(ip(3, 255))).toBe(false)
    expect(usable(ip(3, 0))).toBe(false)
    expect(usable(ip(0, 2))).toBe(true)
    expect(() => loopbackAddresses('10.0.0.0/16')).toThrow(/127\.0\.0\.0\/8/)
  })

  it('never hands one address to two runtimes, reclaims stale leases only, and says when the pool is exhausted', async () => {
    const leaseDir = join(root, 'leases')
    const cidr = '127.99.0.0/29' // .2 to .7: six addresses
    const a = new LoopbackIps({ cidr, leaseDir, stateDir: join(root, 'a'), reclaimGraceMs: 0 })
    const b = new LoopbackIps({ cidr, leaseDir, stateDir: join(root, 'b'), reclaimGraceMs: 0 })
    const uids = ['p1', 'p2', 'p3', 'p4', 'p5', 'p6']
    for (const uid of uids.slice(0, 3)) await markPodPresent(join(root, 'a'), uid)
    for (const uid of uids.slice(3)) await markPodPresent(join(root, 'b'), uid)
    const ips = await Promise.all(uids.map((uid, i) => (i < 3 ? a : b).acquire(uid)))
    expect(new Set(ips).size).toBe(6)
    expect(ips.every((ip) => /^127\.99\.0\.[2-7]$/.test(ip))).toBe(true)
    await expect(a.acquire('p7')).rejects.toMatchObject({ name: 'LoopbackPoolExhaustedError' })
    // b's pod p4 is gone from b's state dir: its lease is stale and a may take it.
    await rm(podRecordPath(join(root, 'b'), 'p4'))
    expect(await a.acquire('p7')).toBe(ips[3])
    // Release by someone who does not hold the lease is ignored.
    await b.release(ips[0]!, 'p1')
    expect(existsSync(join(leaseDir, ips[0]!))).toBe(true)
    await a.release(ips[0]!, 'p1')
    expect(existsSync(join(leaseDir, ips[0]!))).toBe(false)
  })

  it('makes the shared lease directory writable by every user, like /tmp (a root peer once left others without pod IPs)', async () => {
    const leaseDir = join(root, 'shared-leases')
    const a = new LoopbackIps({ cidr: '127.99.1.0/29', leaseDir, stateDir: join(root, 'a') })
    await markPodPresent(join(root, 'a'), 'q1')
    await a.acquire('q1')
    expect((await stat(leaseDir)).mode & 0o7777).toBe(0o1777)
  })

  it('does not reclaim a lease younger than the grace period (its pod file may not be written yet)', async () => {
    const leaseDir = join(root, 'leases-grace')
    const cidr = '127.98.0.0/30' // .2 and .3
    const a = new LoopbackIps({ cidr, leaseDir, stateDir: join(root, 'ga') })
    const b = new LoopbackIps({ cidr, leaseDir, stateDir: join(root, 'gb') })
    await a.acquire('x1')
    await a.acquire('x2')
    await expect(b.acquire('y1')).rejects.toMatchObject({ name: 'LoopbackPoolExhaustedError' })
  })
})
