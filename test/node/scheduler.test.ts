// The scheduler's pure parts: exact quantities, every filter and score as
// tables, plans over simulated nodes (spreading, exhaustion with Kubernetes'
// message, selectors, taints, host ports, cordons). The controller is in
// scheduler-controller.test.ts.
import { describe, expect, it } from 'vitest'
import { quantityMilliValue, quantityValue } from '../../node/kinds/quantity.js'
import type { ApiObject } from '../../node/kinds/meta.js'
import { portsFilter, resourcesFilter, selectorFilter, taintFilter, tolerates, unschedulableFilter, whyNot, type Filter } from '../../node/scheduler/filters.js'
import { noNodesMessage, planBindings } from '../../node/scheduler/plan.js'
import { leastAllocatedScore, spreadScore } from '../../node/scheduler/scores.js'
import { nodeFacts, podFacts, addPod, type Toleration } from '../../node/scheduler/snapshot.js'
import { perNode, simNode, simPod, type NodeOptions, type PodOptions } from './scheduler-fixtures.js'

/** One filter's verdict on a pod and a node that already holds `bound`. */
function verdict(filter: Filter, pod: ApiObject, node: ApiObject, bound: ApiObject[] = []): string[] | null {
  const n = nodeFacts(node)
  for (const b of bound) addPod(n, podFacts(b))
  return filter(podFacts(pod), n)
}

describe('quantities', () => {
  it.each([
    ['100m', 100, 1],
    ['0.5', 500, 1],
    ['0.1', 100, 1],
    ['1.5', 1500, 2],
    ['2', 2000, 2],
    ['128Mi', 128 * 2 ** 20 * 1000, 128 * 2 ** 20],
    ['.5Gi', 2 ** 29 * 1000, 2 ** 29],
    ['1G', 1e12, 1e9],
    ['1e3', 1e6, 1000],
    ['1E3', 1e6, 1000],
    ['2.5e-3', 3, 1],
    ['1u', 1, 1],
    ['16333164Ki', 16333164 * 1024 * 1000, 16333164 * 1024],
    [3, 3000, 3],
    [0.25, 250, 1],
  ] as const)('%s is %d milli and %d whole, rounded up as resource.Quantity rounds', (text, milli, whole) => {
    expect(quantityMilliValue(text)).toBe(milli)
    expect(quantityValue(text)).toBe(whole)
  })

  it('adds up exactly where floating point would not', () => {
    expect(Array.from({ length: 10 }, () => quantityMilliValue('0.1')).reduce((a, b) => a + b)).toBe(1000)
  })

  it('refuses what is not a quantity', () => {
    expect(() => quantityValue('lots')).toThrow('"lots" is not a quantity')
    expect(() => quantityValue('1Kb')).toThrow()
  })
})

describe('filters', () => {
  it.each([
    ['a schedulable node', {}, {}, null],
    ['a cordoned node', { unschedulable: true }, {}, ['node(s) were unschedulable']],
    ['a cordoned node, tolerated', { unschedulable: true }, { tolerations: [{ key: 'node.kubernetes.io/unschedulable', operator: 'Exists', effect: 'NoSchedule' }] }, null],
  ] as const)('unschedulable: %s', (_, n, p, expected) => {
    expect(verdict(unschedulableFilter, simPod('p', p as PodOptions), simNode('n', n as NodeOptions))).toEqual(expected)
  })

  const gpu = { key: 'dedicated', value: 'gpu', effect: 'NoSchedule' }
  it.each([
    ['no taints', [], [], null],
    ['an untolerated NoSchedule taint', [gpu], [], ['node(s) had untolerated taint {dedicated: gpu}']],
    ['an untolerated NoExecute taint', [{ key: 'k', value: '', effect: 'NoExecute' }], [], ['node(s) had untolerated taint {k: }']],
    ['a PreferNoSchedule taint (a preference, not a filter)', [{ key: 'k', value: 'v', effect: 'PreferNoSchedule' }], [], null],
    ['Equal with the same value', [gpu], [{ key: 'dedicated', operator: 'Equal', value: 'gpu', effect: 'NoSchedule' }], null],
    ['Equal is the default operator', [gpu], [{ key: 'dedicated', value: 'gpu' }], null],
    ['Equal with another value', [gpu], [{ key: 'dedicated', operator: 'Equal', value: 'cpu' }], ['node(s) had untolerated taint {dedicated: gpu}']],
    ['Exists on the key', [gpu], [{ key: 'dedicated', operator: 'Exists' }], null],
    ['Exists without a key tolerates everything', [gpu, { key: 'x', value: 'y', effect: 'NoExecute' }], [{ operator: 'Exists' }], null],
    ['a toleration for another effect', [gpu], [{ key: 'dedicated', operator: 'Exists', effect: 'NoExecute' }], ['node(s) had untolerated taint {dedicated: gpu}']],
    ['the first untolerated of two', [{ key: 'a', value: '1', effect: 'NoSchedule' }, gpu], [{ key: 'a', operator: 'Exists' }], ['node(s) had untolerated taint {dedicated: gpu}']],
  ] as const)('taints: %s', (_, taints, tolerations, expected) => {
    expect(verdict(taintFilter, simPod('p', { tolerations: [...tolerations] as Partial<Toleration>[] }), simNode('n', { taints: [...taints] }))).toEqual(expected)
  })

  it.each([
    ['Ready', 'True', null],
    ['NotReady', 'False', ['node(s) had untolerated taint {node.kubernetes.io/not-ready: }']],
    ['Unknown', 'Unknown', ['node(s) had untolerated taint {node.kubernetes.io/unreachable: }']],
    ['without a Ready condition', null, ['node(s) had untolerated taint {node.kubernetes.io/unreachable: }']],
  ] as const)('readiness: a node %s', (_, ready, expected) => {
    expect(verdict(taintFilter, simPod('p'), simNode('n', { ready }))).toEqual(expected)
    // No toleration gets a pod onto a node that is not Ready.
    expect(verdict(taintFilter, simPod('p', { tolerations: [{ operator: 'Exists' }] }), simNode('n', { ready }))).toEqual(expected)
  })

  it('matches tolerations as v1.Toleration.ToleratesTaint does', () => {
    const taint = { key: 'k', value: 'v', effect: 'NoSchedule' }
    const t = (o: Partial<Toleration>): Toleration => ({ key: '', operator: 'Equal', value: '', effect: '', ...o })
    expect(tolerates(t({ key: 'k', value: 'v' }), taint)).toBe(true)
    expect(tolerates(t({ key: 'k', operator: 'Exists' }), taint)).toBe(true)
    expect(tolerates(t({ key: 'other', operator: 'Exists' }), taint)).toBe(false)
    expect(tolerates(t({ key: 'k', value: 'v', effect: 'NoExecute' }), taint)).toBe(false)
    expect(tolerates(t({ key: 'k', value: 'v', operator: 'Bogus' }), taint)).toBe(false)
  })

  it.each([
    ['no selector', {}, {}, null],
    ['a matching label', { disk: 'ssd' }, { disk: 'ssd', zone: 'a' }, null],
    ['another value', { disk: 'ssd' }, { disk: 'hdd' }, ["node(s) didn't match Pod's node affinity/selector"]],
    ['a missing label', { disk: 'ssd', zone: 'a' }, { disk: 'ssd' }, ["node(s) didn't match Pod's node affinity/selector"]],
  ] as const)('nodeSelector: %s', (_, nodeSelector, labels, expected) => {
    expect(verdict(selectorFilter, simPod('p', { nodeSelector }), simNode('n', { labels }))).toEqual(expected)
  })

  const noPorts = ["node(s) didn't have free ports for the requested pod ports"]
  it.each([
    ['a free port', { port: 80 }, { port: 81 }, null],
    ['the same port', { port: 80 }, { port: 80 }, noPorts],
    ['the same port over UDP', { port: 53, protocol: 'UDP' }, { port: 53 }, null],
    ['the same port on two addresses', { port: 80, hostIP: '10.0.0.1' }, { port: 80, hostIP: '10.0.0.2' }, null],
    ['the same port and address', { port: 80, hostIP: '10.0.0.1' }, { port: 80, hostIP: '10.0.0.1' }, noPorts],
    ['an address against every address', { port: 80, hostIP: '10.0.0.1' }, { port: 80 }, noPorts],
    ['every address against an address', { port: 80 }, { port: 80, hostIP: '10.0.0.1' }, noPorts],
  ] as const)('hostPort: %s', (_, wanted, held, expected) => {
    const bound = simPod('holder', { hostPort: held, nodeName: 'n' })
    expect(verdict(portsFilter, simPod('p', { hostPort: wanted }), simNode('n'), [bound])).toEqual(expected)
  })

  it.each([
    ['room to spare', { cpu: '1', memory: '1Gi' }, [], null],
    ['exactly the rest', { cpu: '3', memory: '7Gi' }, [{ cpu: '1', memory: '1Gi' }], null],
    ['a millicore too many', { cpu: '3001m' }, [{ cpu: '1' }], ['Insufficient cpu']],
    ['a byte too many', { memory: `${7 * 2 ** 30 + 1}` }, [{ memory: '1Gi' }], ['Insufficient memory']],
    ['both', { cpu: '5', memory: '9Gi' }, [], ['Insufficient cpu', 'Insufficient memory']],
    ['no requests on a full node', {}, [{ cpu: '4', memory: '8Gi' }], null],
  ] as const)('resources: %s', (_, wanted, held, expected) => {
    const bound = held.map((r, k) => simPod(`b${k}`, { ...r, nodeName: 'n' }))
    expect(verdict(resourcesFilter, simPod('p', wanted), simNode('n'), bound)).toEqual(expected)
  })

  it('resources: counts pods against allocatable pods', () => {
    const bound = [simPod('a', { nodeName: 'n' }), simPod('b', { nodeName: 'n' })]
    expect(verdict(resourcesFilter, simPod('p'), simNode('n', { pods: '3' }), bound)).toBeNull()
    expect(verdict(resourcesFilter, simPod('p', { cpu: '5' }), simNode('n', { pods: '2' }), bound)).toEqual(['Too many pods', 'Insufficient cpu'])
  })

  it('reports the first filter a node fails, in kube-scheduler order', () => {
    const node = simNode('n', { unschedulable: true, labels: {}, cpu: '1' })
    expect(whyNot(podFacts(simPod('p', { cpu: '2', nodeSelector: { a: 'b' } })), nodeFacts(node))).toEqual(['node(s) were unschedulable'])
    expect(whyNot(podFacts(simPod('p', { cpu: '2', nodeSelector: { a: 'b' } })), nodeFacts(simNode('n', { cpu: '1' })))).toEqual(["node(s) didn't match Pod's node affinity/selector"])
  })
})

describe('scores', () => {
  it.each([
    ['an empty node and a quarter of it', { cpu: '1', memory: '2Gi' }, [], 75],
    ['half used, then a quarter more', { cpu: '1', memory: '2Gi' }, [{ cpu: '1', memory: '2Gi' }, { cpu: '1', memory: '2Gi' }], 25],
    ['an explicit 0 cpu counts as 0 (no default), memory full', { cpu: '0', memory: '8Gi' }, [], 50],
    ['no requests: counted as 100m and 200Mi', {}, [], Math.floor((97 + 97) / 2)],
    ['more than the node', { cpu: '8', memory: '16Gi' }, [], 0],
  ] as const)('least allocated: %s', (_, wanted, held, expected) => {
    const n = nodeFacts(simNode('n'))
    for (const [k, r] of held.entries()) addPod(n, podFacts(simPod(`b${k}`, { ...r, nodeName: 'n' })))
    expect(leastAllocatedScore(podFacts(simPod('p', wanted)), n)).toBe(expected)
  })

  it.each([
    [0, 0, 100],
    [0, 3, 100],
    [1, 3, 66.67],
    [101, 101, 0],
    [100, 101, 0.99],
    [2, 2, 0],
    [1, 2, 50],
  ])('spread: %d of the controller here, at most %d on a node: %d', (count, maxCount, expected) => {
    expect(spreadScore(count, maxCount)).toBeCloseTo(expected, 2)
  })
})

describe('plan', () => {
  const three = [simNode('node-a'), simNode('node-b'), simNode('node-c')]
  const replicas = (n: number, o: PodOptions = {}) => Array.from({ length: n }, (_, k) => simPod(`web-${String(k).padStart(2, '0')}`, { owner: 'web', ...o }))

  it('spreads 30 replicas over 3 equal nodes, 10 each, in one pass', () => {
    const plan = planBindings(three, [], replicas(30))
    expect(plan.unschedulable).toEqual([])
    expect(perNode(plan.bindings)).toEqual({ 'node-a': 10, 'node-b': 10, 'node-c': 10 })
  })

  it('spreads around the replicas already bound', () => {
    const bound = [simPod('old-1', { owner: 'web', nodeName: 'node-a' }), simPod('old-2', { owner: 'web', nodeName: 'node-a' })]
    expect(perNode(planBindings(three, bound, replicas(4)).bindings)).toEqual({ 'node-b': 2, 'node-c': 2 })
  })

  it('spreads a controller\'s pods even onto a busier node', () => {
    const bound = [simPod('web-old-1', { owner: 'web', cpu: '100m', nodeName: 'node-a' }), simPod('web-old-2', { owner: 'web', cpu: '100m', nodeName: 'node-a' }), simPod('db', { cpu: '2', memory: '4Gi', nodeName: 'node-b' })]
    // Resources alone would pick node-a (92 against 47); two web replicas there already outweigh that.
    expect(planBindings(three.slice(0, 2), bound, [simPod('web-new', { owner: 'web', cpu: '100m' })]).bindings[0]!.nodeName).toBe('node-b')
  })

  it('prefers the emptier node for pods of no controller, and the first name on a tie', () => {
    expect(planBindings(three, [], [simPod('solo')]).bindings).toEqual([{ pod: expect.anything(), nodeName: 'node-a' }])
    const busy = [simPod('x', { cpu: '2', nodeName: 'node-a' }), simPod('y', { cpu: '1', nodeName: 'node-c' })]
    expect(planBindings(three, busy, [simPod('solo', { cpu: '1' })]).bindings[0]!.nodeName).toBe('node-b')
  })

  it('says why in Kubernetes words when nothing fits', () => {
    const nodes = [simNode('a', { labels: { pool: 'x' }, memory: '1Gi' }), simNode('b', { labels: { pool: 'x' }, memory: '1Gi' }), simNode('c', { memory: '64Gi' })]
    const plan = planBindings(nodes, [], [simPod('big', { memory: '2Gi', nodeSelector: { pool: 'x' } })])
    expect(plan.bindings).toEqual([])
    // Sorted as Go's sort.Strings sorts "count reason".
    expect(plan.unschedulable.map((u) => u.message)).toEqual(["0/3 nodes are available: 1 node(s) didn't match Pod's node affinity/selector, 2 Insufficient memory."])
  })

  it('fills the nodes, then reports the rest, oldest first', () => {
    const nodes = [simNode('a', { cpu: '2', memory: '2Gi' }), simNode('b', { cpu: '2', memory: '2Gi' })]
    const pods = replicas(6, { cpu: '1', memory: '512Mi' }).map((p, k) => ({ ...p, metadata: { ...p.metadata, creationTimestamp: `2025-01-01T00:00:0${5 - k}Z` } }))
    const plan = planBindings(nodes, [], pods)
    expect(perNode(plan.bindings)).toEqual({ a: 2, b: 2 })
    // The youngest two (web-00 and web-01) are left over.
    expect(plan.unschedulable.map((u) => u.pod.metadata.name)).toEqual(['web-01', 'web-00'])
    expect(plan.unschedulable[0]!.message).toBe('0/2 nodes are available: 2 Insufficient cpu.')
  })

  it('keeps pods on the nodes their nodeSelector names', () => {
    const nodes = [simNode('a', { labels: { disk: 'hdd' } }), simNode('b', { labels: { disk: 'ssd' } }), simNode('c')]
    expect(perNode(planBindings(nodes, [], replicas(5, { nodeSelector: { disk: 'ssd' } })).bindings)).toEqual({ b: 5 })
  })

  it('puts only tolerating pods on a tainted node', () => {
    const nodes = [simNode('gpu', { taints: [{ key: 'dedicated', value: 'gpu', effect: 'NoSchedule' }] }), simNode('plain', { pods: '1' })]
    const plan = planBindings(nodes, [], [simPod('a'), simPod('b'), simPod('t', { tolerations: [{ key: 'dedicated', operator: 'Exists' }] })])
    expect(plan.bindings.map((b) => [b.pod.metadata.name, b.nodeName])).toEqual([
      ['a', 'plain'],
      ['t', 'gpu'],
    ])
    expect(plan.unschedulable.map((u) => u.message)).toEqual(['0/2 nodes are available: 1 Too many pods, 1 node(s) had untolerated taint {dedicated: gpu}.'])
  })

  it('gives each host port to one pod per node', () => {
    const plan = planBindings([simNode('a'), simNode('b')], [], replicas(3, { hostPort: { port: 80 } }))
    expect(perNode(plan.bindings)).toEqual({ a: 1, b: 1 })
    expect(plan.unschedulable.map((u) => u.message)).toEqual(["0/2 nodes are available: 2 node(s) didn't have free ports for the requested pod ports."])
  })

  it('leaves cordoned and not-ready nodes out', () => {
    const nodes = [simNode('a', { unschedulable: true }), simNode('b', { ready: 'False' }), simNode('c')]
    expect(perNode(planBindings(nodes, [], replicas(4)).bindings)).toEqual({ c: 4 })
    const alone = planBindings(nodes.slice(0, 2), [], replicas(1))
    expect(alone.unschedulable.map((u) => u.message)).toEqual(['0/2 nodes are available: 1 node(s) had untolerated taint {node.kubernetes.io/not-ready: }, 1 node(s) were unschedulable.'])
  })

  it('frees what finished pods held and ignores pods on unknown nodes', () => {
    const nodes = [simNode('a', { cpu: '1' })]
    const bound = [simPod('done', { cpu: '1', nodeName: 'a', phase: 'Succeeded' }), simPod('ghost', { cpu: '1', nodeName: 'gone' })]
    expect(planBindings(nodes, bound, [simPod('p', { cpu: '1' })]).bindings.map((b) => b.nodeName)).toEqual(['a'])
    expect(planBindings(nodes, [simPod('busy', { cpu: '1', nodeName: 'a', phase: 'Running' })], [simPod('p', { cpu: '1' })]).unschedulable.map((u) => u.message)).toEqual(['0/1 nodes are available: 1 Insufficient cpu.'])
  })

  it('says there are no nodes when there are none', () => {
    expect(planBindings([], [], [simPod('p')]).unschedulable.map((u) => u.message)).toEqual([noNodesMessage])
  })
})
