// Rule generation for the kernel proxy, without touching the kernel.
import { describe, expect, it } from 'vitest'
import {
  changeLines,
  cleanupLines,
  endpointChainName,
  isOurChain,
  portRules,
  renderBatch,
  serviceChainName,
  splitPortsForKernel,
  type RuleConfig,
} from '../../net/kernel-rules.js'
import type { ProxyEndpoint, ProxyServicePort } from '../../net/proxy-types.js'

const config: RuleConfig = { chainPrefix: 'SHOAL', masqueradeMark: 0x10000, guardLoopback: true }

function direct(ip: string, port = 8080): ProxyEndpoint {
  return { ip, port, viaPeerId: null }
}

function servicePort(overrides: Partial<ProxyServicePort> = {}): ProxyServicePort {
  return {
    id: 'default/web:80/TCP',
    vip: '127.77.0.1',
    port: 80,
    protocol: 'TCP',
    sessionAffinity: 'None',
    affinityTimeoutMs: 10_800_000,
    endpoints: [direct('127.0.0.2'), direct('127.0.0.3'), direct('127.0.0.4')],
    ...overrides,
  }
}

describe('splitPortsForKernel', () => {
  const remote: ProxyEndpoint = { ip: '10.88.0.5', port: 80, viaPeerId: '12D3KooWRemote' }
  const table = [
    servicePort({ id: 'all-direct' }),
    servicePort({ id: 'none', endpoints: [] }),
    servicePort({ id: 'all-remote', endpoints: [remote] }),
    servicePort({ id: 'mixed', endpoints: [direct('127.0.0.9'), remote] }),
    servicePort({ id: 'ipv6', vip: 'fd00::1' }),
    servicePort({ id: 'injection', vip: '127.77.0.1 -j ACCEPT' }),
    servicePort({ id: 'bad-endpoint', endpoints: [direct('127.0.0.2', 70_000)] }),
  ]

  it("leaves mixed ports to userspace by default, and takes only the direct endpoints with 'direct-only'", () => {
    const byDefault = splitPortsForKernel(table, 'userspace')
    expect(byDefault.kernel.map((port) => port.id)).toEqual(['all-direct', 'none'])
    expect(byDefault.userspace.map((port) => port.id)).toEqual(['all-remote', 'mixed', 'ipv6', 'injection', 'bad-endpoint'])

    const directOnly = splitPortsForKernel(table, 'direct-only')
    expect(directOnly.kernel.map((port) => port.id)).toEqual(['all-direct', 'none', 'mixed'])
    expect(directOnly.kernel.find((port) => port.id === 'mixed')!.endpoints).toEqual([direct('127.0.0.9')])
  })
})

describe('portRules', () => {
  it('spreads over n endpoints with probabilities 1/n, 1/(n-1), ... and a final catch-all', () => {
    const rules = portRules(servicePort(), config)
    const svc = serviceChainName('SHOAL', 'default/web:80/TCP')
    expect(rules.natJumps).toEqual([
      { chain: 'SHOAL-SERVICES', spec: `-d 127.77.0.1/32 -p tcp -m tcp --dport 80 -m comment --comment "default/web:80/TCP" -j ${svc}` },
    ])
    const [svcChain, ...sepChains] = rules.natChains
    expect(svcChain!.name).toBe(svc)
    const seps = ['127.0.0.2:8080', '127.0.0.3:8080', '127.0.0.4:8080'].map((d) => endpointChainName('SHOAL', 'default/web:80/TCP', d))
    expect(svcChain!.rules).toEqual([
      '-j MARK --or-mark 0x10000',
      `-m statistic --mode random --probability 0.3333333333 -j ${seps[0]}`,
      `-m statistic --mode random --probability 0.5000000000 -j ${seps[1]}`,
      `-j ${seps[2]}`,
    ])
    expect(sepChains.map((chain) => chain.rules)).toEqual([
      ['-p tcp -j DNAT --to-destination 127.0.0.2:8080'],
      ['-p tcp -j DNAT --to-destination 127.0.0.3:8080'],
      ['-p tcp -j DNAT --to-destination 127.0.0.4:8080'],
    ])
    expect(rules.filterRules).toEqual([])
  })

  it('remembers the client per endpoint with -m recent for ClientIP affinity', () => {
    const rules = portRules(servicePort({ sessionAffinity: 'ClientIP', affinityTimeoutMs: 30_500, endpoints: [direct('127.0.0.2')] }), config)
    const sep = endpointChainName('SHOAL', 'default/web:80/TCP', '127.0.0.2:8080')
    expect(rules.natChains[0]!.rules).toEqual([
      '-j MARK --or-mark 0x10000',
      `-m recent --name ${sep} --mask 255.255.255.255 --rsource --rcheck --seconds 31 --reap -j ${sep}`,
      `-j ${sep}`,
    ])
    expect(rules.natChains[1]!.rules).toEqual([
      `-p tcp -m recent --set --name ${sep} --mask 255.255.255.255 --rsource -j DNAT --to-destination 127.0.0.2:8080`,
    ])
  })

  it('rejects a port with no endpoints in the filter table (tcp-reset for TCP, port unreachable for UDP), NodePort too', () => {
    const tcp = portRules(servicePort({ endpoints: [], nodePort: 30001 }), config)
    expect(tcp.natChains).toEqual([])
    expect(tcp.natJumps).toEqual([])
    expect(tcp.filterRules.map((rule) => rule.spec)).toEqual([
      '-d 127.77.0.1/32 -p tcp -m tcp --dport 80 -m comment --comment "default/web:80/TCP" -j REJECT --reject-with tcp-reset',
      '-m addrtype --dst-type LOCAL -p tcp -m tcp --dport 30001 -m comment --comment "default/web:80/TCP" -j REJECT --reject-with tcp-reset',
    ])
    const udp = portRules(servicePort({ id: 'dns', protocol: 'UDP', port: 53, endpoints: [] }), config)
    expect(udp.filterRules[0]!.spec).toContain('-p udp -m udp --dport 53')
    expect(udp.filterRules[0]!.spec).toContain('--reject-with icmp-port-unreachable')
  })

  it('adds a NodePort jump to the same service chain', () => {
    const rules = portRules(servicePort({ nodePort: 30001 }), config)
    expect(rules.natJumps[1]).toEqual({
      chain: 'SHOAL-NODEPORTS',
      spec: `-p tcp -m tcp --dport 30001 -m comment --comment "default/web:80/TCP" -j ${serviceChainName('SHOAL', 'default/web:80/TCP')}`,
    })
  })

  it('keeps chain names within the 28 characters iptables allows, and recognizable as ours', () => {
    for (const prefix of ['SHOAL', 'ABCDEFGH']) {
      const name = endpointChainName(prefix, 'x'.repeat(300), '10.0.0.1:1')
      expect(name.length).toBeLessThanOrEqual(28)
      expect(isOurChain(name, prefix)).toBe(true)
      expect(isOurChain(serviceChainName(prefix, 'a'), prefix)).toBe(true)
    }
    expect(isOurChain('SHOAL_PARTITION', 'SHOAL')).toBe(false)
    expect(isOurChain('KUBE-SERVICES', 'SHOAL')).toBe(false)
    expect(isOurChain('SHOAL-SVC-ABC', 'OTHER')).toBe(false)
  })
})

describe('changeLines', () => {
  it('touches only the chains and jumps of the port that changed', () => {
    const before = portRules(servicePort(), config)
    const after = portRules(servicePort({ endpoints: [direct('127.0.0.2'), direct('127.0.0.5')] }), config)
    const lines = changeLines([{ before, after }])
    const svc = serviceChainName('SHOAL', 'default/web:80/TCP')
    const sep = (d: string): string => endpointChainName('SHOAL', 'default/web:80/TCP', d)
    // The jump in SHOAL-SERVICES is unchanged, so it is neither deleted nor re-added.
    expect(lines.nat.filter((line) => line.includes('SHOAL-SERVICES'))).toEqual([])
    expect(lines.nat).toEqual([
      `:${svc} - [0:0]`,
      `:${sep('127.0.0.2:8080')} - [0:0]`,
      `:${sep('127.0.0.5:8080')} - [0:0]`,
      `:${sep('127.0.0.3:8080')} - [0:0]`,
      `:${sep('127.0.0.4:8080')} - [0:0]`,
      `-A ${svc} -j MARK --or-mark 0x10000`,
      `-A ${svc} -m statistic --mode random --probability 0.5000000000 -j ${sep('127.0.0.2:8080')}`,
      `-A ${svc} -j ${sep('127.0.0.5:8080')}`,
      `-A ${sep('127.0.0.2:8080')} -p tcp -j DNAT --to-destination 127.0.0.2:8080`,
      `-A ${sep('127.0.0.5:8080')} -p tcp -j DNAT --to-destination 127.0.0.5:8080`,
      `-X ${sep('127.0.0.3:8080')}`,
      `-X ${sep('127.0.0.4:8080')}`,
    ])
    expect(lines.filter).toEqual([])
  })

  it('moves a port between DNAT and REJECT, and removes a port entirely', () => {
    const serving = portRules(servicePort({ endpoints: [direct('127.0.0.2')] }), config)
    const empty = portRules(servicePort({ endpoints: [] }), config)
    const toEmpty = changeLines([{ before: serving, after: empty }])
    expect(toEmpty.nat.some((line) => line.startsWith('-D SHOAL-SERVICES -d 127.77.0.1/32'))).toBe(true)
    expect(toEmpty.nat.filter((line) => line.startsWith('-X '))).toHaveLength(2)
    expect(toEmpty.filter).toEqual([`-A SHOAL-SERVICES ${empty.filterRules[0]!.spec}`])

    const removed = changeLines([{ before: empty, after: undefined }])
    expect(removed).toEqual({ nat: [], filter: [`-D SHOAL-SERVICES ${empty.filterRules[0]!.spec}`] })
    expect(renderBatch(removed)).toBe(`*filter\n-D SHOAL-SERVICES ${empty.filterRules[0]!.spec}\nCOMMIT\n`)
  })
})

describe('cleanupLines', () => {
  it("deletes jumps to our chains and our chains, and nobody else's", () => {
    const nat = [
      '*nat',
      ':PREROUTING ACCEPT [0:0]',
      ':OUTPUT ACCEPT [0:0]',
      ':SHOAL-SERVICES - [0:0]',
      ':SHOAL-SVC-ABCDEF - [0:0]',
      ':KUBE-SERVICES - [0:0]',
      '-A PREROUTING -m comment --comment "shoal service portals" -j SHOAL-SERVICES',
      '-A PREROUTING -j KUBE-SERVICES',
      '-A OUTPUT -d 10.0.0.1/32 -j DNAT --to-destination 10.0.0.2',
      '-A SHOAL-SERVICES -d 127.77.0.1/32 -p tcp -m tcp --dport 80 -j SHOAL-SVC-ABCDEF',
      '-A KUBE-SERVICES -j SHOAL-OTHER',
      'COMMIT',
    ].join('\n')
    const filter = ['*filter', ':INPUT ACCEPT [0:0]', ':SHOAL_PARTITION - [0:0]', '-A INPUT -j SHOAL_PARTITION', 'COMMIT'].join('\n')
    expect(cleanupLines({ nat, filter }, 'SHOAL')).toEqual({
      nat: [
        '-D PREROUTING -m comment --comment "shoal service portals" -j SHOAL-SERVICES',
        ':SHOAL-SERVICES - [0:0]',
        ':SHOAL-SVC-ABCDEF - [0:0]',
        '-X SHOAL-SERVICES',
        '-X SHOAL-SVC-ABCDEF',
      ],
      filter: [],
    })
  })
})
