// Kind behaviour users see in `describe` and `get`: QoS classes and node status text.
import { describe, expect, it } from 'vitest'
import { prepareCreate } from '../../node/api/prepare.js'
import { coreKinds, nodeStatusText } from '../../node/kinds/cluster.js'
import type { ApiObject } from '../../node/kinds/meta.js'

const kinds = coreKinds()

function podWith(...resources: ({ requests?: Record<string, string>; limits?: Record<string, string> } | undefined)[]): ApiObject {
  const containers = resources.map((r, k) => ({ name: `c${k}`, image: 'nginx', ...(r === undefined ? {} : { resources: r }) }))
  return prepareCreate(kinds.byKind('v1', 'Pod')!, { apiVersion: 'v1', kind: 'Pod', metadata: { name: 'p' }, spec: { containers } }, 'default', 'Strict', '2026-11-22T00:00:00Z').object
}

const qos = (o: ApiObject): unknown => (o.status as { qosClass?: string }).qosClass

describe('pod QoS class', () => {
  it('is BestEffort without requests or limits, Guaranteed when every container caps both at its request, Burstable otherwise', () => {
    expect(qos(podWith(undefined, undefined))).toBe('BestEffort')
    expect(qos(podWith({ limits: { cpu: '500m', memory: '128Mi' } }))).toBe('Guaranteed')
    expect(qos(podWith({ requests: { cpu: '500m', memory: '128Mi' }, limits: { cpu: '500m', memory: '128Mi' } }))).toBe('Guaranteed')
    expect(qos(podWith({ requests: { cpu: '100m' } }))).toBe('Burstable')
    expect(qos(podWith({ requests: { cpu: '100m', memory: '64Mi' }, limits: { cpu: '500m', memory: '128Mi' } }))).toBe('Burstable')
    expect(qos(podWith({ limits: { cpu: '500m', memory: '128Mi' } }, undefined))).toBe('Burstable')
  })
})

describe('node STATUS column', () => {
  const node = (ready: string | undefined, unschedulable = false): ApiObject => ({
    apiVersion: 'v1',
    kind: 'Node',
    metadata: { name: 'n' },
    spec: { unschedulable },
    status: { conditions: ready === undefined ? [] : [{ type: 'Ready', status: ready }] },
  })
  it('reads as kubectl prints it', () => {
    expect(nodeStatusText(node('True'))).toBe('Ready')
    expect(nodeStatusText(node('False'))).toBe('NotReady')
    expect(nodeStatusText(node('Unknown'))).toBe('NotReady')
    expect(nodeStatusText(node(undefined))).toBe('Unknown')
    expect(nodeStatusText(node('True', true))).toBe('Ready,SchedulingDisabled')
  })
})
