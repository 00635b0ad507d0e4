// Pod IPs of the process runtime: one loopback address per pod (Linux routes
// all of 127.0.0.0/8 to `lo`, so a process can bind 127.88.3.4 without any
// setup). Several peers may share a host, each with its own state directory,
// so an address is leased host-wide: a file named after the address in a
// shared directory, created with O_EXCL, holding who owns it. A lease whose
// owner no longer has the pod (or no longer exists) may be reclaimed.
import { createHash } from 'node:crypto'
import { existsSync } from 'node:fs'
import { chmod, mkdir, readFile, stat, unlink, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'

export const defaultLoopbackCidr = '127.88.0.0/16'
export const defaultLeaseDir = join(tmpdir(), 'shoal-loopback-ips')
/** A lease younger than this is never reclaimed: its owner may not have written the pod's file yet. */
export const leaseReclaimGraceMs = 60_000
/** A reclaim lock older than this was left by a process that died holding it. */
const reclaimLockStaleMs = 10_000

export interface IpLease {
  /** State directory of the runtime that holds the address. */
  ownerStateDir: string
  uid: string
}

export class LoopbackPoolExhaustedError extends Error {
  override readonly name = 'LoopbackPoolExhaustedError'
}

/** Where a runtime keeps a pod's file; a lease is live while this file exists. */
export function podRecordPath(stateDir: string, uid: string): string {
  return join(stateDir, 'pods', uid, 'pod.json')
}

function parseIpv4(text: string): number {
  const parts = text.split('.').map(Number)
  if (parts.length !== 4 || parts.some((p) => !Number.isInteger(p) || p < 0 || p > 255)) throw new Error(`not an IPv4 address: ${text}`)
  return ((parts[0]! << 24) | (parts[1]! << 16) | (parts[2]! << 8) | parts[3]!) >>> 0
}

function formatIpv4(value: number): string {
  return [value >>> 24, (value >>> 16) & 255, (value >>> 8) & 255, value & 255].join('.')
}

/** Every address of the CIDR a pod may get: not ending in `.0`/`.255`, not the network's first host (`127.88.0.1`). */
export function loopbackAddresses(cidr: string): { first: number; count: number; usable: (value: number) => boolean } {
  const [base, bitsText] = cidr.split('/')
  const bits = Number(bitsText)
  if (base === undefined || !Number.isInteger(bits) || bits < 8 || bits > 30) throw new Error(`bad loopback CIDR: ${cidr}`)
  const mask = bits === 0 ? 0 : (0xffffffff << (32 - bits)) >>> 0
  const first = (parseIpv4(base) & mask) >>> 0
  if (first >>> 24 !== 127) throw new Error(`loopback CIDR must be inside 127.0.0.0/8: ${cidr}`)
  const count = 2 ** (32 - bits)
  const gateway = first + 1
  // Addresses ending in .0 or .255 look like network and broadcast addresses to people and some programs.
  const usable = (value: number): boolean => value !== gateway && (value & 255) !== 0 && (value & 255) !== 255
  return { first, count, usable }
}

export interface LoopbackIpsOptions {
  cidr?: string
  leaseDir?: string
  /** This runtime's state directory: written into its leases. */
  stateDir: string
  /** Defaults to `leaseReclaimGraceMs`. */
  reclaimGraceMs?: number
}

export class LoopbackIps {
  readonly cidr: string
  readonly leaseDir: string
  private readonly stateDir: string
  private readonly reclaimGraceMs: number

  constructor(options: LoopbackIpsOptions) {
    this.reclaimGraceMs = options.reclaimGraceMs ?? leaseReclaimGraceMs
    this.cidr = options.cidr ?? defaultLoopbackCidr
    this.leaseDir = options.leaseDir ?? defaultLeaseDir
    this.stateDir = options.stateDir
    loopbackAddresses(this.cidr) // fail at construction on a bad CIDR
  }

  /**
   * Leases a free address for the pod. Probing starts at a hash of the uid,
   * so peers allocating at once rarely race for the same file.
   */
  async acquire(uid: string): Promise<string> {
    await this.ensureLeaseDir()
    const { first, count, usable } = loopbackAddresses(this.cidr)
    const start = createHash('sha256').update(uid).digest().readUInt32BE(0) % count
    for (let i = 0; i < count; i++) {
      const value = first + ((start + i) % count)
      if (!usable(value)) continue
      const ip = formatIpv4(value)
      if (await this.tryCreate(ip, uid)) return ip
      if (await this.reclaimIfStale(ip) && (await this.tryCreate(ip, uid))) return ip
    }
    throw new LoopbackPoolExhaustedError(`no free address left in ${this.cidr} (leases in ${this.leaseDir})`)
  }

  /** Makes sure the pod's address is leased to it again (after a restart); false if someone else holds it. */
  async reassert(ip: string, uid: string): Promise<boolean> {
    await this.ensureLeaseDir()
    if (await this.tryCreate(ip, uid)) return true
    const lease = await this.readLease(ip)
    return lease !== undefined && lease.uid === uid && lease.ownerStateDir === this.stateDir
  }

  /** Gives the address back, only if this runtime holds it for this pod. */
  async release(ip: string, uid: string): Promise<void> {
    const lease = await this.readLease(ip)
    if (lease === undefined || lease.uid !== uid || lease.ownerStateDir !== this.stateDir) return
    await unlink(join(this.leaseDir, ip)).catch(() => undefined)
  }

  /**
   * The shared lease directory, made like /tmp (world-writable, sticky) by whoever creates it: peers of
   * different users share a host's addresses, and a root peer's 0755 directory left others' pods without IPs.
   */
  private async ensureLeaseDir(): Promise<void> {
    await mkdir(this.leaseDir, { recursive: true })
    const info = await stat(this.leaseDir)
    if (info.uid === process.getuid?.() && (info.mode & 0o1777) !== 0o1777) await chmod(this.leaseDir, 0o1777)
  }

  private async tryCreate(ip: string, uid: string): Promise<boolean> {
    const lease: IpLease = { ownerStateDir: this.stateDir, uid }
    try {
      await writeFile(join(this.leaseDir, ip), JSON.stringify(lease), { flag: 'wx' })
      return true
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'EEXIST') return false
      throw error
    }
  }

  private async readLease(ip: string): Promise<IpLease | undefined> {
    try {
      const lease = JSON.parse(await readFile(join(this.leaseDir, ip), 'utf8')) as Partial<IpLease>
      if (typeof lease.ownerStateDir !== 'string' || typeof lease.uid !== 'string') return undefined
      return { ownerStateDir: lease.ownerStateDir, uid: lease.uid }
    } catch {
      return undefined
    }
  }

  /**
   * Removes a lease whose owner no longer has the pod. Reclaimers take a
   * host-wide lock, so two of them never both judge the same file stale
   * and each take it (plain allocators only create, so they cannot clash).
   */
  private async reclaimIfStale(ip: string): Promise<boolean> {
    const path = join(this.leaseDir, ip)
    const info = await stat(path).catch(() => undefined)
    if (info === undefined) return true
    if (Date.now() - info.mtimeMs < this.reclaimGraceMs) return false
    const lease = await this.readLease(ip)
    // A lease that cannot be read is half written (a crash during writeFile) once past the grace period.
    if (lease !== undefined && existsSync(podRecordPath(lease.ownerStateDir, lease.uid))) return false
    const lock = join(this.leaseDir, '.reclaim.lock')
    if (!(await this.takeLock(lock))) return false
    try {
      const again = await this.readLease(ip)
      if (again !== undefined && (again.uid !== lease?.uid || existsSync(podRecordPath(again.ownerStateDir, again.uid)))) return false
      await unlink(path).catch(() => undefined)
      return true
    } finally {
      await unlink(lock).catch(() => undefined)
    }
  }

  private async takeLock(lock: string): Promise<boolean> {
    try {
      await writeFile(lock, String(process.pid), { flag: 'wx' })
      return true
    } catch {
      const info = await stat(lock).catch(() => undefined)
      if (info !== undefined && Date.now() - info.mtimeMs > reclaimLockStaleMs) await unlink(lock).catch(() => undefined)
      return false
    }
  }
}
