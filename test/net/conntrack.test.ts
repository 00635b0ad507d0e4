// Which UDP conntrack entries the kernel proxy deletes after a table change:
// those DNATed to an endpoint its rules no longer send to (the deletion itself
// is tested for real in test/hosts/kernel-proxy.test.ts).
import { describe, expect, it } from 'vitest'
import { staleUdpFlows } from '../../net/conntrack.js'
import type { ProxyServicePort } from '../../net/proxy-types.js'

function port(id: string, endpoints: string[], extra: Partial<ProxyServicePort> = {}): ProxyServicePort {
  return {
    id,
    vip: '10.96.0.10',
    port: 53,
    protocol: 'UDP',
    sessionAffinity: 'None',
    affinityTimeoutMs: 10_800_000,
    endpoints: endpoints.map((address) => ({ ip: address.split(':')[0]!, port: Number(address.split(':')[1]), viaPeerId: null })),
    ...extra,
  }
}

const table = (...ports: ProxyServicePort[]) => new Map(ports.map((p) => [p.id, p]))

describe('staleUdpFlows', () => {
  it('names a removed endpoint of a UDP port, not the ones that stay', () => {
    const before = port('dns', ['10.88.0.2:53', '10.88.0.3:53'])
    expect(staleUdpFlows([before], table(port('dns', ['10.88.0.3:53'])))).toEqual([{ vip: '10.96.0.10', port: 53, endpointIp: '10.88.0.2' }])
    expect(staleUdpFlows([before], table(before))).toEqual([])
  })

  it('names every endpoint of a deleted service, with its NodePort', () => {
    const before = port('dns', ['10.88.0.2:53', '10.88.0.3:53'], { nodePort: 30053 })
    expect(staleUdpFlows([before], table())).toEqual([
      { vip: '10.96.0.10', port: 53, nodePort: 30053, endpointIp: '10.88.0.2' },
      { vip: '10.96.0.10', port: 53, nodePort: 30053, endpointIp: '10.88.0.3' },
    ])
  })

  it('names an endpoint whose port changed, and all of a port whose VIP changed', () => {
    expect(staleUdpFlows([port('dns', ['10.88.0.2:53'])], table(port('dns', ['10.88.0.2:5353'])))).toHaveLength(1)
    expect(staleUdpFlows([port('dns', ['10.88.0.2:53'])], table(port('dns', ['10.88.0.2:53'], { vip: '10.96.0.11' })))).toHaveLength(1)
  })

  it('leaves TCP alone', () => {
    expect(staleUdpFlows([port('web', ['10.88.0.2:80'], { protocol: 'TCP' })], table())).toEqual([])
  })
})
