import { describe, expect, it } from 'vitest'
import { proxyTable, type EndpointsJson, type ServiceJson } from '../../node/services/proxy-table.js'

const placement = { nodeName: 'a', directNodes: new Set(['a', 'b']), peerIdOfNode: (n: string) => (n === 'c' ? 'peer-c' : undefined) }

function service(name: string, spec: ServiceJson['spec']): ServiceJson {
  return { apiVersion: 'v1', kind: 'Service', metadata: { name, namespace: 'default' }, spec }
}

function endpoints(name: string, subsets: EndpointsJson['subsets']): [string, EndpointsJson] {
  return [`default/${name}`, { apiVersion: 'v1', kind: 'Endpoints', metadata: { name, namespace: 'default' }, subsets }]
}

describe('the proxy table', () => {
  it('lists each port of a service with a cluster IP, its ready endpoints, dialled directly or through their peer', () => {
    const table = proxyTable(
      [service('web', { type: 'NodePort', clusterIP: '127.77.0.5', sessionAffinity: 'ClientIP', ports: [{ name: 'http', port: 80, nodePort: 30001 }, { name: 'dns', port: 53, protocol: 'UDP' }] })],
      new Map([
        endpoints('web', [
          {
            addresses: [{ ip: '127.88.0.9', nodeName: 'c' }, { ip: '127.88.0.2', nodeName: 'a' }, { ip: '127.88.0.3', nodeName: 'b' }],
            ports: [{ name: 'http', port: 8080 }, { name: 'dns', port: 5353, protocol: 'UDP' }],
          },
        ]),
      ]),
      placement,
    )
    expect(table[0]).toEqual({
      id: 'default/web:http/TCP',
      vip: '127.77.0.5',
      port: 80,
      protocol: 'TCP',
      sessionAffinity: 'ClientIP',
      affinityTimeoutMs: 10_800_000,
      nodePort: 30001,
      endpoints: [
        { ip: '127.88.0.2', port: 8080, viaPeerId: null },
        { ip: '127.88.0.3', port: 8080, viaPeerId: null },
        { ip: '127.88.0.9', port: 8080, viaPeerId: 'peer-c' },
      ],
    })
    expect(table).toHaveLength(2)
    expect(table[1]).toMatchObject({ id: 'default/web:dns/UDP', protocol: 'UDP', endpoints: [{ port: 5353 }, { port: 5353 }, { port: 5353 }] })
  })

  it('leaves out headless and ExternalName services, and a service without endpoints has none', () => {
    const table = proxyTable(
      [service('headless', { clusterIP: 'None', ports: [{ port: 80 }] }), service('ext', { type: 'ExternalName', ports: [{ port: 80 }] }), service('lonely', { clusterIP: '127.77.0.6', ports: [{ port: 80 }] })],
      new Map(),
      placement,
    )
    expect(table).toEqual([{ id: 'default/lonely:80/TCP', vip: '127.77.0.6', port: 80, protocol: 'TCP', sessionAffinity: 'None', affinityTimeoutMs: 10_800_000, endpoints: [] }])
  })
})
