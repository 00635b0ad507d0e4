// Cluster DNS from a real in-process peer's store: Services and Endpoints
// written through Raft, DnsRecords following the store's change feed, and real
// UDP and TCP queries to a DnsServer answering from it (no upstream, so names
// that are not ours are REFUSED rather than leaving the machine).
import dgram from 'node:dgram'
import net from 'node:net'
import * as dnsPacket from 'dns-packet'
import type { DecodedPacket, Packet, RecordType } from 'dns-packet'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { DnsServer } from '../../net/dns-server.js'
import { prepareCreate } from '../../node/api/prepare.js'
import { submit } from '../../node/api/submit.js'
import { coreKinds } from '../../node/kinds/cluster.js'
import type { ApiObject } from '../../node/kinds/meta.js'
import { DnsRecords } from '../../node/services/dns-records.js'
import { ObjectStore } from '../../node/store/object-store.js'
import type { StoreCommand } from '../../node/store/commands.js'
import { createObject } from '../agent/agent-helpers.js'
import { startLocalPeer, type LocalPeer } from './local-peer.js'
import { until } from './process-cluster.js'

const NOERROR = 0
const NXDOMAIN = 3
const REFUSED = 5
const rcodeOf = (p: DecodedPacket): number => (p.flags ?? 0) & 0xf
const dataOf = (answers: DecodedPacket['answers']): unknown[] => (answers ?? []).map((a) => (a as { data?: unknown }).data)

let local: LocalPeer
let records: DnsRecords
let server: DnsServer

beforeAll(async () => {
  local = await startLocalPeer('dns')
  records = new DnsRecords({ store: local.peer.state.store })
  records.start()
  const host = `127.53.${1 + Math.floor(Math.random() * 250)}.${1 + Math.floor(Math.random() * 250)}`
  server = await DnsServer.start({ host, port: 0, resolver: records, upstreams: [] })
})

afterAll(async () => {
  await server?.close()
  records?.stop()
  await local?.stop()
})

function ask(name: string, type: RecordType = 'A', transport: 'udp' | 'tcp' = 'udp'): Promise<DecodedPacket & { bytes: number }> {
  const packet: Packet = { type: 'query', id: Math.floor(Math.random() * 0x10000), flags: dnsPacket.RECURSION_DESIRED, questions: [{ type, name, class: 'IN' }] }
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no answer to ${name} ${type}`)), 3_000)
    const done = (msg: Buffer): void => {
      clearTimeout(timer)
      resolve({ ...dnsPacket.decode(msg), bytes: msg.length })
    }
    if (transport === 'udp') {
      const socket = dgram.createSocket('udp4')
      socket.on('message', (msg) => {
        socket.close()
        done(msg)
      })
      socket.send(dnsPacket.encode(packet), server.port, server.host)
      return
    }
    const socket = net.connect({ host: server.host, port: server.port }, () => socket.write(dnsPacket.streamEncode(packet)))
    let buffered = Buffer.alloc(0)
    socket.on('error', reject)
    socket.on('data', (chunk: Buffer) => {
      buffered = Buffer.concat([buffered, chunk])
      if (buffered.length < 2 || buffered.length < 2 + buffered.readUInt16BE(0)) return
      socket.destroy()
      done(buffered.subarray(2, 2 + buffered.readUInt16BE(0)))
    })
  })
}

const service = (name: string, spec: Record<string, unknown>): ApiObject => ({ apiVersion: 'v1', kind: 'Service', metadata: { name }, spec })
const address = (ip: string, hostname?: string) => ({ ip, ...(hostname !== undefined ? { hostname } : {}) })

async function writeEndpoints(name: string, subsets: unknown[]): Promise<void> {
  const store = local.peer.state.store
  const current = store.get({ apiVersion: 'v1', kind: 'Endpoints', namespace: 'default', name })
  if (current === undefined) {
    await createObject(local.peer, { apiVersion: 'v1', kind: 'Endpoints', metadata: { name }, subsets })
    return
  }
  const answer = await submit(local.peer.submitter, { op: 'obj.update', object: { ...current, subsets } })
  if (!answer.outcomes[0]!.ok) throw new Error(JSON.stringify(answer.outcomes[0]))
}

async function remove(kind: string, name: string): Promise<void> {
  const command: StoreCommand = { op: 'obj.delete', ref: { apiVersion: 'v1', kind, namespace: 'default', name }, propagation: 'Background' }
  await submit(local.peer.submitter, command)
}

/** Asks until `ok` holds for the answer (the change feed is applied right after commit; DNS must follow within 1 s). */
async function answerUntil(name: string, type: RecordType, ok: (p: DecodedPacket) => boolean, what: string): Promise<DecodedPacket> {
  return until(async () => {
    const p = await ask(name, type)
    return ok(p) ? p : undefined
  }, 1_000, what)
}

describe('cluster DNS from the store', () => {
  it('answers a ClusterIP service by its full name in any case, by NAME.NAMESPACE, with SRV for named ports and PTR', async () => {
    await createObject(local.peer, service('web', { clusterIP: '127.77.0.10', ports: [{ name: 'http', port: 80, protocol: 'TCP', targetPort: 8080 }, { name: 'dns', port: 53, protocol: 'UDP' }] }))
    const a = await answerUntil('web.default.svc.cluster.local', 'A', (p) => p.answers!.length > 0, 'the A record of web')
    expect(rcodeOf(a)).toBe(NOERROR)
    expect(a.flag_aa).toBe(true)
    expect(a.answers).toEqual([expect.objectContaining({ name: 'web.default.svc.cluster.local', type: 'A', ttl: 5, data: '127.77.0.10' })])
    expect(dataOf((await ask('Web.Default.SVC.Cluster.LOCAL', 'A', 'tcp')).answers)).toEqual(['127.77.0.10'])
    expect(dataOf((await ask('web.default.', 'A')).answers)).toEqual(['127.77.0.10'])
    const srv = await ask('_http._tcp.web.default.svc.cluster.local', 'SRV')
    expect(dataOf(srv.answers)).toEqual([expect.objectContaining({ port: 80, target: 'web.default.svc.cluster.local' })])
    expect(dataOf(srv.additionals)).toEqual(['127.77.0.10'])
    expect(dataOf((await ask('_dns._udp.web.default.svc.cluster.local', 'SRV')).answers)).toEqual([expect.objectContaining({ port: 53 })])
    expect(rcodeOf(await ask('_http._udp.web.default.svc.cluster.local', 'SRV'))).toBe(NXDOMAIN)
    expect(dataOf((await ask('10.0.77.127.in-addr.arpa', 'PTR')).answers)).toEqual(['web.default.svc.cluster.local'])
    const txt = await ask('dns-version.cluster.local', 'TXT')
    expect(txt.answers!.length).toBe(1)
  })

  it('answers NXDOMAIN with an SOA for names that do not exist, NODATA for AAAA, and refuses names that are not ours', async () => {
    await answerUntil('web.default.svc.cluster.local', 'A', (p) => p.answers!.length > 0, 'web')
    for (const name of ['nope.default.svc.cluster.local', 'web.nosuchns.svc.cluster.local', 'google.com.default.svc.cluster.local', 'x.pod.cluster.local']) {
      const nx = await ask(name)
      expect(rcodeOf(nx), name).toBe(NXDOMAIN)
      expect(nx.answers).toEqual([])
      expect(nx.authorities!.map((r) => r.type), name).toEqual(['SOA'])
    }
    const aaaa = await ask('web.default.svc.cluster.local', 'AAAA')
    expect(rcodeOf(aaaa)).toBe(NOERROR)
    expect(aaaa.answers).toEqual([])
    expect(aaaa.authorities!.map((r) => r.type)).toEqual(['SOA'])
    // The namespace's own name exists (it has names under it).
    expect(rcodeOf(await ask('default.svc.cluster.local'))).toBe(NOERROR)
    // No upstream here: names outside the cluster domain, and NAME.NAMESPACE without such a service, are not ours.
    expect(rcodeOf(await ask('example.com'))).toBe(REFUSED)
    expect(rcodeOf(await ask('nope.default'))).toBe(REFUSED)
  })

  it('answers a headless service with its ready endpoints, follows their changes, and SRV per endpoint', async () => {
    await createObject(local.peer, service('db', { clusterIP: 'None', ports: [{ name: 'pg', port: 5432, protocol: 'TCP' }] }))
    const name = 'db.default.svc.cluster.local'
    const empty = await answerUntil(name, 'A', (p) => rcodeOf(p) === NOERROR, 'the headless service exists')
    expect(empty.answers).toEqual([])
    await writeEndpoints('db', [{ addresses: [address('10.88.0.2', 'db-0'), address('10.88.0.3')], notReadyAddresses: [address('10.88.0.9')], ports: [{ name: 'pg', port: 15432, protocol: 'TCP' }] }])
    const a = await answerUntil(name, 'A', (p) => p.answers!.length === 2, 'two ready endpoints')
    expect(dataOf(a.answers).sort()).toEqual(['10.88.0.2', '10.88.0.3'])
    expect(dataOf((await ask(`db-0.${name}`)).answers)).toEqual(['10.88.0.2'])
    expect(dataOf((await ask(`10-88-0-3.${name}`)).answers)).toEqual(['10.88.0.3'])
    const srv = await ask(`_pg._tcp.${name}`, 'SRV')
    expect(dataOf(srv.answers).map((d) => (d as { target: string; port: number }).target).sort()).toEqual([`10-88-0-3.${name}`, `db-0.${name}`])
    expect(dataOf(srv.answers).every((d) => (d as { port: number }).port === 15432)).toBe(true)
    expect(dataOf((await ask('2.0.88.10.in-addr.arpa', 'PTR')).answers)).toEqual([`db-0.${name}`])

    await writeEndpoints('db', [{ addresses: [address('10.88.0.4')], ports: [{ name: 'pg', port: 15432, protocol: 'TCP' }] }])
    const moved = await answerUntil(name, 'A', (p) => p.answers!.length === 1 && dataOf(p.answers)[0] === '10.88.0.4', 'the endpoint change')
    expect(dataOf(moved.answers)).toEqual(['10.88.0.4'])
    expect(rcodeOf(await ask(`db-0.${name}`))).toBe(NXDOMAIN)
    await remove('Endpoints', 'db')
    await answerUntil(name, 'A', (p) => rcodeOf(p) === NOERROR && p.answers!.length === 0, 'no endpoints left')
  })

  it('forgets a deleted service', async () => {
    await createObject(local.peer, service('gone', { clusterIP: '127.77.0.11', ports: [{ port: 80 }] }))
    await answerUntil('gone.default.svc.cluster.local', 'A', (p) => p.answers!.length === 1, 'gone exists')
    await remove('Service', 'gone')
    const nx = await answerUntil('gone.default.svc.cluster.local', 'A', (p) => rcodeOf(p) === NXDOMAIN, 'gone is gone')
    expect(nx.authorities![0]!.type).toBe('SOA')
    expect(rcodeOf(await ask('11.0.77.127.in-addr.arpa', 'PTR'))).toBe(REFUSED)
  })

  it('sends a truncated UDP answer (TC) for a headless service with many endpoints, and all of it over TCP', async () => {
    const ips = Array.from({ length: 150 }, (_, k) => `10.89.${k >> 8}.${(k & 0xff) + 1}`)
    await createObject(local.peer, service('many', { clusterIP: 'None', ports: [{ port: 80 }] }))
    await writeEndpoints('many', [{ addresses: ips.map((ip) => address(ip)), ports: [{ port: 80, protocol: 'TCP' }] }])
    const udp = await answerUntil('many.default.svc.cluster.local', 'A', (p) => p.flag_tc, 'a truncated answer')
    expect((udp as DecodedPacket & { bytes: number }).bytes).toBeLessThanOrEqual(512)
    expect(udp.answers!.length).toBeGreaterThan(0)
    expect(udp.answers!.length).toBeLessThan(150)
    const tcp = await ask('many.default.svc.cluster.local', 'A', 'tcp')
    expect(tcp.flag_tc).toBe(false)
    expect(dataOf(tcp.answers).sort()).toEqual([...ips].sort())
  })
})

describe('DnsRecords on a bare store', () => {
  const kinds = coreKinds()
  const make = (kind: string, body: Record<string, unknown>, namespace?: string): ApiObject => prepareCreate(kinds.byKind('v1', kind)!, { apiVersion: 'v1', kind, ...body }, namespace, 'Strict', '2026-01-01T00:00:00Z').object

  it('uses the configured cluster domain and catches up by rescanning after a snapshot install', () => {
    const store = new ObjectStore(kinds)
    store.apply(1, { op: 'obj.create', object: make('Namespace', { metadata: { name: 'shop' } }) }, [], [])
    const dns = new DnsRecords({ store, clusterDomain: 'Corp.Example.', resyncEveryMs: 0 })
    dns.start()
    const events: Parameters<ObjectStore['apply']>[3] = []
    store.apply(2, { op: 'obj.create', object: make('Service', { metadata: { name: 'cart' }, spec: { clusterIP: '127.77.1.1', ports: [{ port: 80 }] } }, 'shop') }, [], events)
    for (const e of events) store.watches.publish(e)
    const a = dns.resolve({ name: 'cart.shop.svc.corp.example', type: 'A' })
    expect(a.kind === 'records' && dataOf(a.answers)).toEqual(['127.77.1.1'])
    expect(dns.resolve({ name: 'cart.shop.svc.cluster.local', type: 'A' }).kind).toBe('forward')
    // A snapshot install replaces everything without change events.
    const other = make('Service', { metadata: { name: 'till' }, spec: { clusterIP: '127.77.1.2', ports: [{ port: 80 }] } }, 'shop')
    store.restore([...store.list(kinds.byKind('v1', 'Namespace')!), { ...other, metadata: { ...other.metadata, resourceVersion: '9' } }], 9, [])
    dns.rescan()
    const nx = dns.resolve({ name: 'cart.shop.svc.corp.example', type: 'A' })
    expect(nx.kind === 'records' && nx.rcode).toBe('NXDOMAIN')
    const till = dns.resolve({ name: 'till.shop.svc.corp.example', type: 'A' })
    expect(till.kind === 'records' && dataOf(till.answers)).toEqual(['127.77.1.2'])
    dns.stop()
  })
})
