import { describe, expect, it } from 'vitest'
import { containerEnv, expandVariables, serviceEnv, ContainerConfigError, type ServiceJson } from '../../node/agent/pod-env.js'
import { containerSpecOf } from '../../node/agent/container-spec.js'
import type { PodJson } from '../../node/agent/pod-types.js'

const redisMaster: ServiceJson = { apiVersion: 'v1', kind: 'Service', metadata: { name: 'redis-master', namespace: 'default' }, spec: { clusterIP: '127.77.0.5', ports: [{ port: 6379, protocol: 'TCP' }] } }

function pod(env: PodJson['spec']['containers'][0]['env'] = [], extra: Partial<PodJson['spec']> = {}): PodJson {
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name: 'web-1', namespace: 'default', uid: 'u-1', labels: { app: 'web' } },
    spec: { nodeName: 'host-a', containers: [{ name: 'c', image: 'busybox', env, command: ['echo', '$(GREETING)', '$$(GREETING)'], args: ['$(MISSING)'], resources: { limits: { cpu: '1500m', memory: '64Mi' } } }], ...extra },
  }
}

describe('service environment variables', () => {
  it('names a service the way Kubernetes does, with the Docker-link variables', () => {
    const env = Object.fromEntries(serviceEnv(redisMaster).map((e) => [e.name, e.value]))
    expect(env).toEqual({
      REDIS_MASTER_SERVICE_HOST: '127.77.0.5',
      REDIS_MASTER_SERVICE_PORT: '6379',
      REDIS_MASTER_PORT: 'tcp://127.77.0.5:6379',
      REDIS_MASTER_PORT_6379_TCP: 'tcp://127.77.0.5:6379',
      REDIS_MASTER_PORT_6379_TCP_PROTO: 'tcp',
      REDIS_MASTER_PORT_6379_TCP_PORT: '6379',
      REDIS_MASTER_PORT_6379_TCP_ADDR: '127.77.0.5',
    })
  })

  it('gives named ports their own variable and headless services none', () => {
    const named = serviceEnv({ ...redisMaster, spec: { clusterIP: '127.77.0.6', ports: [{ name: 'http-alt', port: 8080 }] } })
    expect(named).toContainEqual({ name: 'REDIS_MASTER_SERVICE_PORT_HTTP_ALT', value: '8080' })
    expect(serviceEnv({ ...redisMaster, spec: { clusterIP: 'None', ports: [{ port: 1 }] } })).toEqual([])
  })

  it('leaves them out when enableServiceLinks is false, and lets the container override them', () => {
    const p = pod([{ name: 'REDIS_MASTER_SERVICE_HOST', value: 'mine' }])
    const env = containerEnv({ pod: p, container: p.spec.containers[0]!, services: [redisMaster], facts: { podIp: '', hostIp: '' }, nodeAllocatable: {} })
    expect(env.find((e) => e.name === 'REDIS_MASTER_SERVICE_HOST')?.value).toBe('mine')
    const off = pod([], { enableServiceLinks: false })
    expect(containerEnv({ pod: off, container: off.spec.containers[0]!, services: [redisMaster], facts: { podIp: '', hostIp: '' }, nodeAllocatable: {} })).toEqual([])
  })
})

describe('container env and command', () => {
  it('resolves fieldRefs, resourceFieldRefs and $(VAR) references in env, command and args', () => {
    const p = pod([
      { name: 'POD_NAME', valueFrom: { fieldRef: { fieldPath: 'metadata.name' } } },
      { name: 'POD_NAMESPACE', valueFrom: { fieldRef: { fieldPath: 'metadata.namespace' } } },
      { name: 'MY_IP', valueFrom: { fieldRef: { fieldPath: 'status.podIP' } } },
      { name: 'NODE', valueFrom: { fieldRef: { fieldPath: 'spec.nodeName' } } },
      { name: 'APP', valueFrom: { fieldRef: { fieldPath: "metadata.labels['app']" } } },
      { name: 'CPUS', valueFrom: { resourceFieldRef: { resource: 'limits.cpu' } } },
      { name: 'MEM_MI', valueFrom: { resourceFieldRef: { resource: 'limits.memory', divisor: '1Mi' } } },
      { name: 'GREETING', value: 'hello $(POD_NAME) at $(MY_IP)' },
    ])
    const spec = containerSpecOf({ pod: p, container: p.spec.containers[0]!, services: [], facts: { podIp: '127.88.0.9', hostIp: '10.0.0.1' }, nodeAllocatable: {}, volumes: new Map(), attempt: 0 })
    const env = Object.fromEntries(spec.env.map((e) => [e.name, e.value]))
    expect(env).toMatchObject({ POD_NAME: 'web-1', POD_NAMESPACE: 'default', MY_IP: '127.88.0.9', NODE: 'host-a', APP: 'web', CPUS: '2', MEM_MI: '64', GREETING: 'hello web-1 at 127.88.0.9' })
    expect(spec.command).toEqual(['echo', 'hello web-1 at 127.88.0.9', '$(GREETING)'])
    expect(spec.args).toEqual(['$(MISSING)'])
    expect(spec.cpuLimitMillis).toBe(1500)
    expect(spec.memoryLimitBytes).toBe(64 * 1024 * 1024)
  })

  it('expands like Kubernetes: $$ escapes, an unclosed reference stays as written', () => {
    const lookup = (n: string): string | undefined => ({ A: 'x' })[n]
    expect(expandVariables('$(A)-$$(A)-$(B)-$(A', lookup)).toBe('x-$(A)-$(B)-$(A')
    expect(expandVariables('cost: $5 $', lookup)).toBe('cost: $5 $')
  })

  it('refuses what Shoal cannot provide with a config error the container waits on', () => {
    const p = pod([{ name: 'PW', valueFrom: { secretKeyRef: { name: 's', key: 'k' } } }])
    expect(() => containerEnv({ pod: p, container: p.spec.containers[0]!, services: [], facts: { podIp: '', hostIp: '' }, nodeAllocatable: {} })).toThrow(ContainerConfigError)
    expect(() => containerEnv({ pod: p, container: p.spec.containers[0]!, services: [], facts: { podIp: '', hostIp: '' }, nodeAllocatable: {} })).toThrow(/secretKeyRef is not supported/)
  })
})
