// Pure pieces of the resource commands: apply's three-way merge, manifest
// reading, kubectl's column alignment, quantities and name resolution.
import { describe, expect, it } from 'vitest'
import { lastAppliedAnnotation, lastAppliedOf, threeWayMergePatch, withLastApplied } from '../../node/cli/apply-patch.js'
import { parseManifests } from '../../node/cli/manifests.js'
import { addQuantities, formatQuantity, parseQuantity, percentOf } from '../../node/cli/quantity.js'
import { Discovery, parseResourceList } from '../../node/cli/resources.js'
import { describeStyle, getTableStyle, tabwrite } from '../../node/cli/table-print.js'

const rc = (replicas: number, extra: Record<string, unknown> = {}): Record<string, unknown> => ({
  apiVersion: 'v1',
  kind: 'ReplicationController',
  metadata: { name: 'web', labels: { app: 'web' } },
  spec: { replicas, selector: { app: 'web' }, template: { metadata: { labels: { app: 'web' } }, spec: { containers: [{ name: 'c', image: 'nginx', ports: [{ containerPort: 80 }] }] } }, ...extra },
})

/** What the server keeps: the applied object plus defaults, status and metadata of its own. */
function live(applied: Record<string, unknown>): Record<string, unknown> {
  const copy = structuredClone(applied) as { metadata: Record<string, unknown>; spec: { template: { spec: { containers: Record<string, unknown>[] } } }; status?: unknown }
  copy.metadata.uid = 'u-1'
  copy.metadata.resourceVersion = '7'
  for (const c of copy.spec.template.spec.containers) {
    c.imagePullPolicy = 'Always'
    for (const p of c.ports as Record<string, unknown>[]) p.protocol = 'TCP'
  }
  copy.status = { replicas: 0 }
  return copy
}

describe('three-way merge patch (apply)', () => {
  it('is empty when the live object only adds defaults and status to what was applied', () => {
    const applied = withLastApplied(rc(3) as never)
    expect(threeWayMergePatch(lastAppliedOf(live(applied)), applied, live(applied))).toEqual({})
  })

  it('sets a changed field and carries the new configuration in the annotation', () => {
    const before = withLastApplied(rc(3) as never)
    const after = withLastApplied(rc(5) as never)
    const patch = threeWayMergePatch(lastAppliedOf(live(before)), after, live(before)) as { spec: unknown; metadata: { annotations: Record<string, string> } }
    expect(patch.spec).toEqual({ replicas: 5 })
    expect(JSON.parse(patch.metadata.annotations[lastAppliedAnnotation]!)).toMatchObject({ spec: { replicas: 5 } })
  })

  it('deletes what the last configuration had and the new one dropped, but not fields others set', () => {
    const before = withLastApplied(rc(3, { minReadySeconds: 10 }) as never)
    const current = live(before) as { spec: Record<string, unknown> }
    current.spec.paused = true // set by someone else: not ours to delete
    const after = withLastApplied(rc(3) as never)
    const patch = threeWayMergePatch(lastAppliedOf(current), after, current) as { spec: Record<string, unknown> }
    expect(patch.spec).toEqual({ minReadySeconds: null })
  })

  it('replaces a list the user changed, whole', () => {
    const before = withLastApplied(rc(3) as never)
    const changed = rc(3) as { spec: { template: { spec: { containers: { image: string }[] } } } }
    changed.spec.template.spec.containers[0]!.image = 'nginx:2'
    const after = withLastApplied(changed as never)
    const patch = threeWayMergePatch(lastAppliedOf(live(before)), after, live(before)) as { spec: { template: { spec: { containers: unknown[] } } } }
    expect(patch.spec.template.spec.containers).toEqual([{ name: 'c', image: 'nginx:2', ports: [{ containerPort: 80 }] }])
  })

  it('replaces a list when the user dropped a field from one of its items (the live list still has it)', () => {
    const before = withLastApplied(rc(3) as never)
    const changed = rc(3) as { spec: { template: { spec: { containers: { ports?: unknown }[] } } } }
    delete changed.spec.template.spec.containers[0]!.ports
    const after = withLastApplied(changed as never)
    const patch = threeWayMergePatch(lastAppliedOf(live(before)), after, live(before)) as { spec: { template: { spec: { containers: unknown[] } } } }
    expect(patch.spec.template.spec.containers).toEqual([{ name: 'c', image: 'nginx' }])
  })

  it('restores a list someone else edited, even if the configuration did not change', () => {
    const applied = withLastApplied(rc(3) as never)
    const current = live(applied) as { spec: { template: { spec: { containers: { image: string }[] } } } }
    current.spec.template.spec.containers[0]!.image = 'hacked'
    const patch = threeWayMergePatch(lastAppliedOf(current as never), applied, current as never) as { spec: { template: { spec: { containers: { image: string }[] } } } }
    expect(patch.spec.template.spec.containers[0]!.image).toBe('nginx')
  })

  it('stores the configuration without its own annotation, keys sorted, as kubectl does', () => {
    const applied = withLastApplied({ kind: 'Service', apiVersion: 'v1', metadata: { name: 's', annotations: { [lastAppliedAnnotation]: 'old', team: 'a' } } })
    const annotations = applied.metadata.annotations as Record<string, string>
    expect(annotations.team).toBe('a')
    expect(annotations[lastAppliedAnnotation]).toBe('{"apiVersion":"v1","kind":"Service","metadata":{"annotations":{"team":"a"},"name":"s"}}\n')
  })
})

describe('manifests', () => {
  it('reads YAML streams, skips empty documents, and flattens List and typed lists', () => {
    const text = ['apiVersion: v1', 'kind: Pod', 'metadata: {name: a}', '---', '', '---', 'apiVersion: v1', 'kind: List', 'items:', '- {apiVersion: v1, kind: Service, metadata: {name: b}}', '---', 'apiVersion: v1', 'kind: PodList', 'items:', '- {metadata: {name: c}}'].join('\n')
    expect(parseManifests(text, 'f.yaml').map((m) => `${m.object.kind}/${m.object.metadata.name}`)).toEqual(['Pod/a', 'Service/b', 'Pod/c'])
  })

  it('reads JSON, one value or several in a row', () => {
    const text = '{"apiVersion":"v1","kind":"Pod","metadata":{"name":"a"}}\n{"apiVersion":"v1","kind":"List","items":[{"apiVersion":"v1","kind":"Pod","metadata":{"name":"b}{"}}]}'
    expect(parseManifests(text, 'f.json').map((m) => m.object.metadata.name)).toEqual(['a', 'b}{'])
  })

  it('names the file and the line of a YAML error, and what a document lacks', () => {
    expect(() => parseManifests('kind: Pod\nmetadata:\n  name: x\n   bad: [\n', 'bad.yaml')).toThrow(/^error parsing bad\.yaml: .*line 3/)
    expect(() => parseManifests('metadata: {name: x}\n', 'm.yaml')).toThrow('error validating m.yaml: error validating data: [apiVersion not set, kind not set]')
    expect(() => parseManifests('{"kind": "Pod",', 'j.json')).toThrow(/^error parsing j\.json: invalid JSON/)
    expect(() => parseManifests('a: 1\na: 2\n', 'dup.yaml')).toThrow(/^error parsing dup\.yaml: .*unique/)
  })
})

describe('column alignment (Go tabwriter as kubectl uses it)', () => {
  it('pads get tables by 3 with a minimum width of 6, and never pads the last cell', () => {
    expect(tabwrite('NAME\tREADY\tAGE\nweb-1\t1/1\t5s\n', getTableStyle)).toBe('NAME    READY   AGE\nweb-1   1/1     5s\n')
  })

  it('aligns describe fields per block of lines, as kubectl describe does', () => {
    const text = 'Name:\tweb\nAnnotations:\t<none>\nContainers:\n  c:\n    Image:\tnginx\n    Port:\t80/TCP\nEvents:\t<none>\n'
    expect(tabwrite(text, describeStyle)).toBe('Name:         web\nAnnotations:  <none>\nContainers:\n  c:\n    Image:  nginx\n    Port:   80/TCP\nEvents:     <none>\n')
  })
})

describe('quantities', () => {
  it('adds and prints them as resource.Quantity does', () => {
    expect(formatQuantity(addQuantities(parseQuantity('64Mi'), parseQuantity('128Mi')))).toBe('192Mi')
    expect(formatQuantity(addQuantities(parseQuantity('100m'), parseQuantity('1400m')))).toBe('1500m')
    expect(formatQuantity(addQuantities(parseQuantity('500m'), parseQuantity('1500m')))).toBe('2')
    expect(formatQuantity(parseQuantity('1e3'))).toBe('1k')
    expect(percentOf(parseQuantity('64Mi'), parseQuantity('3800Mi'))).toBe(1)
    expect(percentOf(parseQuantity('200m'), parseQuantity('2'))).toBe(10)
    expect(() => parseQuantity('lots')).toThrow('"lots" is not a quantity')
  })
})

describe('resource names through discovery', () => {
  const core = { resources: [
    { name: 'pods', singularName: 'pod', namespaced: true, kind: 'Pod', shortNames: ['po'], categories: ['all'] },
    { name: 'pods/log', singularName: '', namespaced: true, kind: 'Pod' },
    { name: 'replicationcontrollers', singularName: 'replicationcontroller', namespaced: true, kind: 'ReplicationController', shortNames: ['rc'], categories: ['all'] },
    { name: 'replicationcontrollers/scale', singularName: '', namespaced: true, group: 'autoscaling', version: 'v1', kind: 'Scale' },
  ] }
  const apps = { resources: [{ name: 'deployments', singularName: 'deployment', namespaced: true, kind: 'Deployment', shortNames: ['deploy'], categories: ['all'] }] }
  const answers: Record<string, unknown> = {
    '/api': { versions: ['v1'] },
    '/apis': { groups: [{ name: 'apps', preferredVersion: { groupVersion: 'apps/v1', version: 'v1' }, versions: [{ version: 'v1' }] }] },
    '/api/v1': core,
    '/apis/apps/v1': apps,
  }
  const fetch = (path: string): Promise<unknown> => (path in answers ? Promise.resolve(answers[path]) : Promise.reject(new Error(`404 ${path}`)))

  it('resolves plural, singular, short names, kinds and group-qualified names, groups included', async () => {
    const d = await Discovery.load(fetch)
    for (const name of ['pods', 'pod', 'po', 'Pod']) expect(d.resolve(name).plural).toBe('pods')
    expect(d.resolve('rc').subresources).toEqual(['scale'])
    expect(d.resolve('deploy')).toMatchObject({ group: 'apps', version: 'v1', plural: 'deployments' })
    expect(d.resolve('deployments.apps').kind).toBe('Deployment')
    expect(d.expand('all').map((r) => r.plural)).toEqual(['pods', 'replicationcontrollers', 'deployments'])
    expect(() => d.resolve('widgets')).toThrow('the server doesn\'t have a resource type "widgets"')
    await expect(d.forKind('apps/v1', 'Deployment')).resolves.toMatchObject({ plural: 'deployments' })
    await expect(d.forKind('v1beta1', 'ReplicationController')).rejects.toThrow(/no matches for kind "ReplicationController" in version "v1beta1"; .*apiVersion: v1/)
  })

  it('attaches subresources to their resource', () => {
    expect(parseResourceList('', 'v1', core).map((r) => [r.plural, r.subresources])).toEqual([['pods', ['log']], ['replicationcontrollers', ['scale']]])
  })
})

describe('durations in flags', () => {
  it('reads 5s, 500ms, 2m and 1m30s, and refuses a bare number', async () => {
    const { durationMs } = await import('../../node/cli/up.js')
    expect(['5s', '500ms', '2m', '1m30s'].map((t) => durationMs(t, '--pod-eviction-timeout'))).toEqual([5000, 500, 120_000, 90_000])
    expect(() => durationMs('5', '--pod-eviction-timeout')).toThrow(/--pod-eviction-timeout wants a duration/)
  })
})
