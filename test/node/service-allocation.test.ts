// Cluster IPs and node ports allocated when a Service's create or update is
// applied, from replicated state only: the same on every replica, never
// twice, released with the Service, and a clear 422 for what cannot be had.
import { describe, expect, it } from 'vitest'
import { prepareCreate } from '../../node/api/prepare.js'
import { coreKinds } from '../../node/kinds/cluster.js'
import type { ApiObject } from '../../node/kinds/meta.js'
import { parseCidr, serviceCidrSettingKey } from '../../node/kinds/service-allocation.js'
import { refOf, type CommandOutcome, type StoreCommand } from '../../node/store/commands.js'
import { ObjectStore } from '../../node/store/object-store.js'
import { dockerServiceCidrWarning } from '../../node/services/start.js'

const kinds = coreKinds()

type Svc = ApiObject & { spec: { clusterIP?: string; clusterIPs?: string[]; type?: string; ports: { port: number; nodePort?: number; protocol?: string }[] } }

function service(name: string, spec: Record<string, unknown> = {}): ApiObject {
  return prepareCreate(kinds.byKind('v1', 'Service')!, { apiVersion: 'v1', kind: 'Service', metadata: { name }, spec: { ports: [{ port: 80 }], selector: { app: name }, ...spec } }, 'default', 'Strict', '2026-11-22T12:00:00Z').object
}

class Log {
  readonly store = new ObjectStore(kinds)
  index = 0
  constructor(cidr?: string) {
    this.store.settingOf = (key) => (key === serviceCidrSettingKey ? cidr : undefined)
    this.apply({ op: 'obj.create', object: prepareCreate(kinds.byKind('v1', 'Namespace')!, { metadata: { name: 'default' } }, undefined, 'Strict', '2026-11-22T12:00:00Z').object })
  }
  apply(command: StoreCommand): CommandOutcome {
    this.store.apply(++this.index, command, [], [])
    return this.store.outcomeOf(this.index)![0]!
  }
  create(object: ApiObject): Svc {
    const outcome = this.apply({ op: 'obj.create', object })
    if (!outcome.ok) throw new Error(outcome.failure.message)
    return outcome.object as Svc
  }
}

describe('cluster IPs', () => {
  it('gives every Service its own address from the default loopback range, the same on every replica', () => {
    const a = new Log()
    const b = new Log()
    const ips = new Set<string>()
    for (let k = 0; k < 50; k++) {
      const ip = a.create(service(`s${k}`)).spec.clusterIP!
      expect(b.create(service(`s${k}`)).spec.clusterIP).toBe(ip)
      expect(ip).toMatch(/^127\.77\.\d+\.\d+$/)
      ips.add(ip)
    }
    expect(ips.size).toBe(50)
    const one = a.store.get(refOf(service('s0'))) as Svc
    expect(one.spec).toMatchObject({ clusterIPs: [one.spec.clusterIP], ipFamilies: ['IPv4'], ipFamilyPolicy: 'SingleStack' })
  })

  it('honours a free address the user gives, and refuses a taken or out-of-range one with a 422', () => {
    const log = new Log('10.96.0.0/16')
    expect(log.create(service('dns', { clusterIP: '10.96.0.10' })).spec.clusterIP).toBe('10.96.0.10')
    const taken = log.apply({ op: 'obj.create', object: service('other', { clusterIP: '10.96.0.10' }) })
    expect(taken).toMatchObject({ ok: false, failure: { code: 422, reason: 'Invalid', message: 'Service "other" is invalid: spec.clusterIPs: Invalid value: ["10.96.0.10"]: failed to allocate IP 10.96.0.10: provided IP is already allocated' } })
    const outside = log.apply({ op: 'obj.create', object: service('outside', { clusterIP: '10.97.0.1' }) })
    expect(outside).toMatchObject({ ok: false, failure: { code: 422, message: expect.stringContaining('is not in the valid range. The range of valid IPs is 10.96.0.0/16') } })
  })

  it('gives headless and ExternalName services no address, and frees an address when its Service goes', () => {
    const log = new Log('10.96.0.0/30')
    expect(log.create(service('headless', { clusterIP: 'None' })).spec.clusterIPs).toEqual(['None'])
    const first = log.create(service('first'))
    const second = log.create(service('second'))
    expect(new Set([first.spec.clusterIP, second.spec.clusterIP])).toEqual(new Set(['10.96.0.1', '10.96.0.2']))
    expect(log.apply({ op: 'obj.create', object: service('third') })).toMatchObject({ ok: false, failure: { code: 422, message: expect.stringContaining('range 10.96.0.0/30 is full') } })
    log.apply({ op: 'obj.delete', ref: refOf(first), propagation: 'Background' })
    expect(log.create(service('third')).spec.clusterIP).toBe(first.spec.clusterIP)
  })

  it('keeps the address through updates that leave it out, and refuses a change', () => {
    const log = new Log()
    const created = log.create(service('web'))
    const { clusterIP: _ip, clusterIPs: _ips, ...specWithoutIp } = created.spec
    const kept = log.apply({ op: 'obj.update', object: { ...created, spec: { ...specWithoutIp, selector: { app: 'other' } } } })
    expect(kept).toMatchObject({ ok: true, object: { spec: { clusterIP: created.spec.clusterIP, selector: { app: 'other' } } } })
    const moved = log.apply({ op: 'obj.update', object: { ...created, spec: { ...created.spec, clusterIP: '127.77.9.9' } } })
    expect(moved).toMatchObject({ ok: false, failure: { code: 422, message: expect.stringContaining('may not change once set') } })
  })
})

describe('node ports', () => {
  it('allocates node ports for NodePort services, honours a free one and refuses a taken one', () => {
    const log = new Log()
    const frontend = log.create(service('frontend', { type: 'NodePort', ports: [{ port: 80, nodePort: 30001 }] }))
    expect(frontend.spec.ports[0]!.nodePort).toBe(30001)
    const auto = log.create(service('auto', { type: 'NodePort', ports: [{ name: 'a', port: 80 }, { name: 'b', port: 81 }] }))
    const ports = auto.spec.ports.map((p) => p.nodePort!)
    expect(ports.every((p) => p >= 30000 && p <= 32767)).toBe(true)
    expect(new Set(ports).size).toBe(2)
    expect(log.apply({ op: 'obj.create', object: service('clash', { type: 'NodePort', ports: [{ port: 80, nodePort: 30001 }] }) })).toMatchObject({ ok: false, failure: { code: 422, message: 'Service "clash" is invalid: spec.ports[0].nodePort: Invalid value: 30001: provided port is already allocated' } })
    // The same number over UDP is another port.
    expect(log.create(service('udp', { type: 'NodePort', ports: [{ port: 53, nodePort: 30001, protocol: 'UDP' }] })).spec.ports[0]!.nodePort).toBe(30001)
  })

  it('keeps node ports through an update that leaves them out, and drops them when the type changes back', () => {
    const log = new Log()
    const created = log.create(service('web', { type: 'NodePort' }))
    const nodePort = created.spec.ports[0]!.nodePort
    const again = log.apply({ op: 'obj.update', object: { ...created, spec: { ...created.spec, ports: [{ port: 80, protocol: 'TCP' }] } } })
    expect(again).toMatchObject({ ok: true, object: { spec: { ports: [{ nodePort }] } } })
    const back = log.apply({ op: 'obj.update', object: { ...created, spec: { ...created.spec, type: 'ClusterIP' } } }) as unknown as { object: Svc }
    expect(back.object.spec.ports[0]!.nodePort).toBeUndefined()
  })
})

it('parses CIDRs and refuses what is not one', () => {
  expect(parseCidr('10.96.0.0/16')).toMatchObject({ size: 65536 })
  expect(() => parseCidr('10.96.0.0')).toThrow(/not an IPv4 CIDR/)
  expect(() => parseCidr('300.1.1.1/16')).toThrow(/not an IPv4 CIDR/)
})

describe('the Docker runtime and a loopback service CIDR', () => {
  it('warns only when containers could not reach the cluster IPs', () => {
    expect(dockerServiceCidrWarning('docker://4.3.1', '127.77.0.0/16')).toMatch(/routed --service-cidr such as 10\.96\.0\.0\/16/)
    expect(dockerServiceCidrWarning('docker://4.3.1', '10.96.0.0/16')).toBeNull()
    expect(dockerServiceCidrWarning('process://v20.20.2', '127.77.0.0/16')).toBeNull()
    expect(dockerServiceCidrWarning(undefined, undefined)).toBeNull()
  })
})
