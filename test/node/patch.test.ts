import { describe, expect, it } from 'vitest'
import fc from 'fast-check'
import {
  applyJsonPatch,
  applyMergePatch,
  applyPatch,
  combineSchemas,
  defaultPatchSchema,
  InvalidPatchError,
  patchSchemaByKind,
  schemaAt,
  strategicMergePatch,
  UnsupportedPatchTypeError,
  type PatchSchema,
} from '../../node/api/patch.js'

// Every input is deep-frozen, so any mutation of an original or a patch throws.
function frozen<T>(value: T): T {
  if (typeof value === 'object' && value !== null) {
    for (const item of Object.values(value)) frozen(item)
    Object.freeze(value)
  }
  return value
}

const json = (text: string): unknown => frozen(JSON.parse(text))
const jsonPatch = (doc: string, patch: string) => applyPatch(json(doc), json(patch), 'application/json-patch+json')
const mergePatch = (doc: string, patch: string) => applyPatch(json(doc), json(patch), 'application/merge-patch+json')
const smp = (doc: unknown, patch: unknown, schema?: PatchSchema) =>
  applyPatch(frozen(doc), frozen(patch), 'application/strategic-merge-patch+json', schema)

describe('applyPatch dispatch', () => {
  it('matches the content type case-insensitively and ignores parameters', () => {
    expect(applyPatch(frozen({ a: 1 }), frozen({ a: 2 }), 'Application/Merge-Patch+JSON; charset=utf-8')).toEqual({ a: 2 })
    expect(applyPatch(frozen({ a: 1 }), frozen([{ op: 'remove', path: '/a' }]), ' application/json-patch+json ;x=y')).toEqual({})
  })

  it('rejects server-side apply and unknown types with UnsupportedPatchTypeError', () => {
    for (const type of ['application/apply-patch+yaml', 'application/json', 'text/plain', '']) {
      const error = captureError(() => applyPatch({}, {}, type))
      expect(error).toBeInstanceOf(UnsupportedPatchTypeError)
      expect(error.name).toBe('UnsupportedPatchTypeError')
      expect(error.message).toContain(`"${type}"`)
    }
  })

  it('names its errors for the HTTP layer', () => {
    const error = captureError(() => jsonPatch('{}', '{}'))
    expect(error).toBeInstanceOf(InvalidPatchError)
    expect(error.name).toBe('InvalidPatchError')
  })
})

function captureError(run: () => unknown): Error {
  try {
    run()
  } catch (error) {
    return error as Error
  }
  throw new Error('expected an error')
}

describe('JSON Patch, RFC 6902 appendix A', () => {
  const cases: Array<[string, string, string, string]> = [
    ['A.1 adding an object member', '{"foo":"bar"}', '[{"op":"add","path":"/baz","value":"qux"}]', '{"baz":"qux","foo":"bar"}'],
    ['A.2 adding an array element', '{"foo":["bar","baz"]}', '[{"op":"add","path":"/foo/1","value":"qux"}]', '{"foo":["bar","qux","baz"]}'],
    ['A.3 removing an object member', '{"baz":"qux","foo":"bar"}', '[{"op":"remove","path":"/baz"}]', '{"foo":"bar"}'],
    ['A.4 removing an array element', '{"foo":["bar","qux","baz"]}', '[{"op":"remove","path":"/foo/1"}]', '{"foo":["bar","baz"]}'],
    ['A.5 replacing a value', '{"baz":"qux","foo":"bar"}', '[{"op":"replace","path":"/baz","value":"boo"}]', '{"baz":"boo","foo":"bar"}'],
    [
      'A.6 moving a value',
      '{"foo":{"bar":"baz","waldo":"fred"},"qux":{"corge":"grault"}}',
      '[{"op":"move","from":"/foo/waldo","path":"/qux/thud"}]',
      '{"foo":{"bar":"baz"},"qux":{"corge":"grault","thud":"fred"}}',
    ],
    ['A.7 moving an array element', '{"foo":["all","grass","cows","eat"]}', '[{"op":"move","from":"/foo/1","path":"/foo/3"}]', '{"foo":["all","cows","eat","grass"]}'],
    ['A.8 testing a value: success', '{"baz":"qux","foo":["a",2,"c"]}', '[{"op":"test","path":"/baz","value":"qux"},{"op":"test","path":"/foo/1","value":2}]', '{"baz":"qux","foo":["a",2,"c"]}'],
    ['A.10 adding a nested member object', '{"foo":"bar"}', '[{"op":"add","path":"/child","value":{"grandchild":{}}}]', '{"foo":"bar","child":{"grandchild":{}}}'],
    ['A.11 ignoring unrecognized elements', '{"foo":"bar"}', '[{"op":"add","path":"/baz","value":"qux","xyz":123}]', '{"foo":"bar","baz":"qux"}'],
    ['A.14 ~ escape ordering', '{"/":9,"~1":10}', '[{"op":"test","path":"/~01","value":10}]', '{"/":9,"~1":10}'],
    ['A.16 adding an array value', '{"foo":["bar"]}', '[{"op":"add","path":"/foo/-","value":["abc","def"]}]', '{"foo":["bar",["abc","def"]]}'],
  ]
  it.each(cases)('%s', (_name, doc, patch, expected) => {
    expect(jsonPatch(doc, patch)).toEqual(JSON.parse(expected))
  })

  const failures: Array<[string, string, string, string]> = [
    ['A.9 testing a value: error', '{"baz":"qux"}', '[{"op":"test","path":"/baz","value":"bar"}]', 'test operation failed'],
    ['A.12 adding to a nonexistent target', '{"foo":"bar"}', '[{"op":"add","path":"/baz/bat","value":"qux"}]', 'does not exist'],
    // JSON.parse keeps the last "op", so this is a remove of a missing member: still an error.
    ['A.13 invalid JSON patch document', '{"foo":"bar"}', '[{"op":"add","path":"/baz","value":"qux","op":"remove"}]', 'does not exist'],
    ['A.15 comparing strings and numbers', '{"/":9,"~1":10}', '[{"op":"test","path":"/~01","value":"10"}]', 'test operation failed'],
  ]
  it.each(failures)('%s', (_name, doc, patch, message) => {
    expect(() => jsonPatch(doc, patch)).toThrow(InvalidPatchError)
    expect(() => jsonPatch(doc, patch)).toThrow(message)
  })
})

describe('JSON Patch, edge cases', () => {
  it('replaces, copies and tests at the root and deep inside', () => {
    expect(jsonPatch('{"a":1}', '[{"op":"replace","path":"","value":[1]}]')).toEqual([1])
    expect(jsonPatch('{"a":1}', '[{"op":"add","path":"","value":{"b":2}}]')).toEqual({ b: 2 })
    expect(jsonPatch('{"a":{"b":[1,{"c":2}]}}', '[{"op":"copy","from":"/a/b/1","path":"/d"},{"op":"replace","path":"/a/b/1/c","value":3}]')).toEqual({
      a: { b: [1, { c: 3 }] },
      d: { c: 2 },
    })
    expect(jsonPatch('{"a":{"x":1,"y":[1,2]}}', '[{"op":"test","path":"/a","value":{"y":[1,2],"x":1}}]')).toEqual({ a: { x: 1, y: [1, 2] } })
    expect(jsonPatch('{"a/b":{"m~n":1}}', '[{"op":"replace","path":"/a~1b/m~0n","value":2}]')).toEqual({ 'a/b': { 'm~n': 2 } })
    expect(jsonPatch('{"":{"":1}}', '[{"op":"test","path":"//","value":1}]')).toEqual({ '': { '': 1 } })
  })

  it('treats numeric tokens as member names on objects and inserts at the end of arrays', () => {
    expect(jsonPatch('{"a":{}}', '[{"op":"add","path":"/a/0","value":1}]')).toEqual({ a: { '0': 1 } })
    expect(jsonPatch('{"a":[1]}', '[{"op":"add","path":"/a/1","value":2}]')).toEqual({ a: [1, 2] })
  })

  it('keeps "__proto__" as a plain member', () => {
    const result = jsonPatch('{}', '[{"op":"add","path":"/__proto__","value":{"polluted":true}}]') as Record<string, unknown>
    expect(Object.hasOwn(result, '__proto__')).toBe(true)
    expect(({} as Record<string, unknown>)['polluted']).toBeUndefined()
  })

  it.each([
    ['not an array', '{}', '{"op":"add"}', 'must be a JSON array'],
    ['not an object', '{}', '[1]', 'must be an object'],
    ['unknown op', '{}', '[{"op":"frob","path":"/a"}]', 'unknown op "frob"'],
    ['missing path', '{}', '[{"op":"remove"}]', '"path" must be a string'],
    ['missing value', '{}', '[{"op":"add","path":"/a"}]', '"add" needs a "value"'],
    ['missing from', '{}', '[{"op":"move","path":"/a"}]', '"move" needs a string "from"'],
    ['pointer without slash', '{"a":1}', '[{"op":"remove","path":"a"}]', 'must be empty or start with "/"'],
    ['bad escape', '{"a":1}', '[{"op":"remove","path":"/a~2"}]', '"~" must be followed by 0 or 1'],
    ['index out of range', '{"a":[1]}', '[{"op":"add","path":"/a/2","value":0}]', 'no array index "2"'],
    ['leading zero index', '{"a":[1,2]}', '[{"op":"remove","path":"/a/01"}]', 'no array index "01"'],
    ['"-" outside add', '{"a":[1]}', '[{"op":"replace","path":"/a/-","value":0}]', 'no array index "-"'],
    ['replace a missing member', '{}', '[{"op":"replace","path":"/a","value":0}]', 'does not exist'],
    ['remove a missing member', '{}', '[{"op":"remove","path":"/a"}]', 'does not exist'],
    ['remove the root', '{}', '[{"op":"remove","path":""}]', 'cannot remove the document root'],
    ['add below a primitive', '{"a":1}', '[{"op":"add","path":"/a/b","value":0}]', 'cannot add a member to a number'],
    ['move into a child', '{"a":{"b":1}}', '[{"op":"move","from":"/a","path":"/a/b/c"}]', 'into its own child'],
    ['copy from a missing member', '{}', '[{"op":"copy","from":"/x","path":"/y"}]', 'does not exist'],
  ])('rejects %s', (_name, doc, patch, message) => {
    expect(() => jsonPatch(doc, patch)).toThrow(message)
  })

  it('is all or nothing for the caller: the original is untouched after a failure', () => {
    const doc = json('{"a":1}')
    expect(() => applyJsonPatch(doc, frozen([{ op: 'add', path: '/b', value: 2 }, { op: 'test', path: '/a', value: 2 }]))).toThrow()
    expect(doc).toEqual({ a: 1 })
  })
})

describe('JSON Merge Patch, RFC 7386', () => {
  // Appendix A, row by row.
  const table: Array<[string, string, string]> = [
    ['{"a":"b"}', '{"a":"c"}', '{"a":"c"}'],
    ['{"a":"b"}', '{"b":"c"}', '{"a":"b","b":"c"}'],
    ['{"a":"b"}', '{"a":null}', '{}'],
    ['{"a":"b","b":"c"}', '{"a":null}', '{"b":"c"}'],
    ['{"a":["b"]}', '{"a":"c"}', '{"a":"c"}'],
    ['{"a":"c"}', '{"a":["b"]}', '{"a":["b"]}'],
    ['{"a":{"b":"c"}}', '{"a":{"b":"d","c":null}}', '{"a":{"b":"d"}}'],
    ['{"a":[{"b":"c"}]}', '{"a":[1]}', '{"a":[1]}'],
    ['["a","b"]', '["c","d"]', '["c","d"]'],
    ['{"a":"b"}', '["c"]', '["c"]'],
    ['{"a":"foo"}', 'null', 'null'],
    ['{"a":"foo"}', '"bar"', '"bar"'],
    ['{"e":null}', '{"a":1}', '{"e":null,"a":1}'],
    ['[1,2]', '{"a":"b","c":null}', '{"a":"b"}'],
    ['{}', '{"a":{"bb":{"ccc":null}}}', '{"a":{"bb":{}}}'],
  ]
  it.each(table)('%s + %s = %s', (original, patch, expected) => {
    expect(mergePatch(original, patch)).toEqual(JSON.parse(expected))
  })

  it('merges the example of section 3', () => {
    const original = '{"title":"Goodbye!","author":{"givenName":"John","familyName":"Doe"},"tags":["example","sample"],"content":"This will be unchanged"}'
    const patch = '{"title":"Hello!","phoneNumber":"+01-123-456-7890","author":{"familyName":null},"tags":["example"]}'
    expect(mergePatch(original, patch)).toEqual({
      title: 'Hello!',
      author: { givenName: 'John' },
      tags: ['example'],
      content: 'This will be unchanged',
      phoneNumber: '+01-123-456-7890',
    })
  })

  it('returns a result that shares nothing with its inputs', () => {
    const original = json('{"a":{"b":1},"c":[1]}')
    const patch = json('{"d":{"e":[2]}}')
    const result = applyMergePatch(original, patch) as { a: { b: number }; d: { e: number[] } }
    result.a.b = 5
    result.d.e.push(3)
    expect(original).toEqual({ a: { b: 1 }, c: [1] })
    expect(patch).toEqual({ d: { e: [2] } })
  })
})

describe('patch schemas', () => {
  it('agree across kinds on every shared path', () => {
    for (const [kind, schema] of Object.entries(patchSchemaByKind)) {
      for (const [path, strategy] of Object.entries(schema)) expect([kind, path, defaultPatchSchema[path]]).toEqual([kind, path, strategy])
    }
  })

  it('re-root and combine, so a kind added later registers its keys', () => {
    const crd = combineSchemas(patchSchemaByKind['Pod'] ?? {}, schemaAt('spec.workers', { 'items': { strategy: 'merge', mergeKey: 'id' } }))
    expect(crd['spec.workers.items']).toEqual({ strategy: 'merge', mergeKey: 'id' })
    expect(crd['spec.containers[].env']).toEqual({ strategy: 'merge', mergeKey: 'name' })
    expect(defaultPatchSchema['spec.template.spec.containers[].volumeMounts']).toEqual({ strategy: 'merge', mergeKey: 'mountPath' })
    expect(defaultPatchSchema['spec.jobTemplate.spec.template.spec.initContainers']).toEqual({ strategy: 'merge', mergeKey: 'name' })
  })
})

// A Pod as the API server stores it after `kubectl apply` and defaulting.
const livePod = () => ({
  apiVersion: 'v1',
  kind: 'Pod',
  metadata: { name: 'web', namespace: 'default', uid: 'pod-uid', labels: { app: 'web', tier: 'front' }, annotations: { 'kubectl.kubernetes.io/last-applied-configuration': '{"old":true}' } },
  spec: {
    containers: [
      {
        name: 'nginx',
        image: 'nginx:1.24',
        ports: [{ containerPort: 80, protocol: 'TCP' }, { containerPort: 443, protocol: 'TCP' }],
        env: [{ name: 'A', value: '1' }, { name: 'B', value: '2' }],
        volumeMounts: [{ name: 'data', mountPath: '/data' }],
        terminationMessagePath: '/dev/termination-log',
      },
    ],
    volumes: [{ name: 'data', emptyDir: {} }],
    tolerations: [{ key: 'node.kubernetes.io/not-ready', operator: 'Exists', effect: 'NoExecute', tolerationSeconds: 300 }],
    nodeName: 'node-1',
  },
  status: { phase: 'Running', conditions: [{ type: 'Initialized', status: 'True' }, { type: 'Ready', status: 'True' }] },
})

type PodLike = ReturnType<typeof livePod>
const names = (list: unknown): unknown[] => (list as Array<{ name?: unknown; port?: unknown; type?: unknown }>).map((item) => item.name ?? item.port ?? item.type)

describe('strategic merge patch, as kubectl sends it', () => {
  it('second apply of a Pod with a changed image changes only the image and the annotation', () => {
    const patch = {
      metadata: { annotations: { 'kubectl.kubernetes.io/last-applied-configuration': '{"new":true}' } },
      spec: { '$setElementOrder/containers': [{ name: 'nginx' }], containers: [{ image: 'nginx:1.25', name: 'nginx' }] },
    }
    const expected = livePod()
    expected.spec.containers[0]!.image = 'nginx:1.25'
    expected.metadata.annotations['kubectl.kubernetes.io/last-applied-configuration'] = '{"new":true}'
    expect(smp(livePod(), patch)).toEqual(expected)
  })

  it('apply of a ReplicationController with an added env var keeps the order kubectl asks for', () => {
    const rc = { kind: 'ReplicationController', spec: { replicas: 2, selector: { app: 'web' }, template: { metadata: { labels: { app: 'web' } }, spec: livePod().spec } } }
    const patch = {
      spec: {
        template: {
          spec: {
            '$setElementOrder/containers': [{ name: 'nginx' }],
            containers: [{ '$setElementOrder/env': [{ name: 'A' }, { name: 'NEW' }, { name: 'B' }], env: [{ name: 'NEW', value: 'x' }], name: 'nginx' }],
          },
        },
      },
    }
    const result = smp(rc, patch) as { spec: { template: { spec: PodLike['spec'] } } }
    expect(result.spec.template.spec.containers[0]!.env).toEqual([{ name: 'A', value: '1' }, { name: 'NEW', value: 'x' }, { name: 'B', value: '2' }])
    expect(result.spec.template.spec.containers[0]!.ports).toHaveLength(2)
  })

  it('apply that removes a container port sends $patch: delete by containerPort', () => {
    const patch = {
      spec: {
        '$setElementOrder/containers': [{ name: 'nginx' }],
        containers: [{ '$setElementOrder/ports': [{ containerPort: 80 }], name: 'nginx', ports: [{ $patch: 'delete', containerPort: 443 }] }],
      },
    }
    const result = smp(livePod(), patch) as PodLike
    expect(result.spec.containers[0]!.ports).toEqual([{ containerPort: 80, protocol: 'TCP' }])
  })

  it('apply of a Service that removes a port keeps the allocated nodePort of the other', () => {
    const service = {
      kind: 'Service',
      spec: {
        type: 'NodePort',
        clusterIP: '10.96.0.10',
        selector: { app: 'web' },
        ports: [{ name: 'http', port: 80, targetPort: 8080, protocol: 'TCP', nodePort: 30080 }, { name: 'https', port: 443, targetPort: 8443, protocol: 'TCP', nodePort: 30443 }],
      },
    }
    const removeHttps = { spec: { '$setElementOrder/ports': [{ port: 80 }], ports: [{ $patch: 'delete', port: 443 }] } }
    expect((smp(service, removeHttps) as typeof service).spec.ports).toEqual([{ name: 'http', port: 80, targetPort: 8080, protocol: 'TCP', nodePort: 30080 }])
    const retarget = { spec: { '$setElementOrder/ports': [{ port: 80 }, { port: 443 }], ports: [{ port: 80, targetPort: 9090 }] } }
    const ports = (smp(service, retarget) as typeof service).spec.ports
    expect(ports.map((p) => [p.port, p.targetPort, p.nodePort])).toEqual([[80, 9090, 30080], [443, 8443, 30443]])
  })

  it('$setElementOrder/containers reorders, places a new sidecar and keeps server-only containers', () => {
    const pod = { spec: { containers: [{ name: 'a', image: 'a' }, { name: 'b', image: 'b' }] } }
    expect(names((smp(pod, { spec: { '$setElementOrder/containers': [{ name: 'b' }, { name: 'a' }] } }) as typeof pod).spec.containers)).toEqual(['b', 'a'])
    const addSidecar = { spec: { '$setElementOrder/containers': [{ name: 'a' }, { name: 'side' }, { name: 'b' }], containers: [{ name: 'side', image: 's' }] } }
    expect(names((smp(pod, addSidecar) as typeof pod).spec.containers)).toEqual(['a', 'side', 'b'])
    // "b" was injected by someone else: kubectl's order list does not know it, and it stays.
    const bumpA = { spec: { '$setElementOrder/containers': [{ name: 'a' }], containers: [{ name: 'a', image: 'a2' }] } }
    expect((smp(pod, bumpA) as typeof pod).spec.containers).toEqual([{ name: 'a', image: 'a2' }, { name: 'b', image: 'b' }])
  })

  it('rejects a $setElementOrder list that contradicts the patch list', () => {
    const pod = { spec: { containers: [{ name: 'a' }] } }
    expect(() => smp(pod, { spec: { '$setElementOrder/containers': [{ name: 'a' }], containers: [{ name: 'b' }] } })).toThrow('does not match $setElementOrder/containers')
    expect(() => smp(pod, { spec: { '$setElementOrder/containers': [{ name: 'b' }, { name: 'a' }], containers: [{ name: 'a' }, { name: 'b' }] } })).toThrow(InvalidPatchError)
    expect(() => smp(pod, { spec: { '$setElementOrder/containers': { name: 'a' } } })).toThrow('must be a list')
    expect(() => smp(pod, { spec: { '$setElementOrder/containers': [], containers: null } })).toThrow('to be a list')
  })

  it('without an order list, new elements go first, as on a real API server (kubectl patch)', () => {
    const result = smp(livePod(), { spec: { containers: [{ name: 'sidecar', image: 'busybox' }] } }) as PodLike
    expect(names(result.spec.containers)).toEqual(['sidecar', 'nginx'])
    expect(result.spec.containers[1]).toEqual(livePod().spec.containers[0])
  })

  it('merges volumes, volumeMounts, imagePullSecrets and ownerReferences by their keys', () => {
    const pod = { metadata: { ownerReferences: [{ uid: 'rs-1', kind: 'ReplicaSet', name: 'web-1' }] }, spec: { ...livePod().spec, imagePullSecrets: [{ name: 'reg-a' }] } }
    const patch = {
      metadata: { ownerReferences: [{ uid: 'rs-1', controller: true }] },
      spec: {
        volumes: [{ name: 'cache', emptyDir: { medium: 'Memory' } }],
        imagePullSecrets: [{ name: 'reg-b' }],
        containers: [{ name: 'nginx', volumeMounts: [{ mountPath: '/data', readOnly: true }, { name: 'cache', mountPath: '/cache' }] }],
      },
    }
    const result = smp(pod, patch) as typeof pod & { spec: { imagePullSecrets: unknown[] } }
    expect(result.metadata.ownerReferences).toEqual([{ uid: 'rs-1', kind: 'ReplicaSet', name: 'web-1', controller: true }])
    expect(names(result.spec.volumes).sort()).toEqual(['cache', 'data'])
    expect(names(result.spec.imagePullSecrets).sort()).toEqual(['reg-a', 'reg-b'])
    expect(result.spec.containers[0]!.volumeMounts).toContainEqual({ name: 'data', mountPath: '/data', readOnly: true })
    expect(result.spec.containers[0]!.volumeMounts).toHaveLength(2)
  })

  it('merges status.conditions by type, as the kubelet patches Pod status', () => {
    const patch = { status: { '$setElementOrder/conditions': [{ type: 'Initialized' }, { type: 'Ready' }], conditions: [{ type: 'Ready', status: 'False', reason: 'ContainersNotReady' }] } }
    expect((smp(livePod(), patch) as PodLike).status.conditions).toEqual([{ type: 'Initialized', status: 'True' }, { type: 'Ready', status: 'False', reason: 'ContainersNotReady' }])
  })

  it('replaces tolerations and Endpoints subsets whole', () => {
    const tolerations = [{ key: 'gpu', operator: 'Exists' }]
    expect((smp(livePod(), { spec: { tolerations } }) as PodLike).spec.tolerations).toEqual(tolerations)
    const endpoints = { kind: 'Endpoints', subsets: [{ addresses: [{ ip: '10.0.0.1' }], ports: [{ port: 80 }] }] }
    const subsets = [{ addresses: [{ ip: '10.0.0.2' }], ports: [{ port: 80 }] }]
    expect(smp(endpoints, { subsets })).toEqual({ kind: 'Endpoints', subsets })
  })

  it('treats an empty list as "no change" for merged lists and as "clear" for replaced ones (as Kubernetes does)', () => {
    const result = smp(livePod(), { spec: { containers: [], tolerations: [] } }) as PodLike
    expect(result.spec.containers).toEqual(livePod().spec.containers)
    expect(result.spec.tolerations).toEqual([])
  })

  it('deletes a field with null, like merge patch', () => {
    const result = smp(livePod(), { metadata: { labels: { tier: null } }, spec: { nodeName: null, nodeSelector: { disk: 'ssd', gone: null } } }) as PodLike
    expect(result.metadata.labels).toEqual({ app: 'web' })
    expect(result.spec).not.toHaveProperty('nodeName')
    expect(result.spec).toHaveProperty('nodeSelector', { disk: 'ssd' })
  })

  it('merges finalizers as a set and honours $deleteFromPrimitiveList', () => {
    const obj = { metadata: { finalizers: ['a', 'b'] } }
    expect(smp(obj, { metadata: { finalizers: ['b', 'c'] } })).toEqual({ metadata: { finalizers: ['a', 'b', 'c'] } })
    expect(smp(obj, { metadata: { finalizers: ['c'] } })).toEqual({ metadata: { finalizers: ['c', 'a', 'b'] } })
    expect(smp(obj, { metadata: { '$setElementOrder/finalizers': ['a', 'b', 'c'], finalizers: ['c'] } })).toEqual({ metadata: { finalizers: ['a', 'b', 'c'] } })
    expect(smp(obj, { metadata: { '$deleteFromPrimitiveList/finalizers': ['a', 'zzz'] } })).toEqual({ metadata: { finalizers: ['b'] } })
    expect(smp({ metadata: {} }, { metadata: { '$deleteFromPrimitiveList/finalizers': ['a'] } })).toEqual({ metadata: {} })
    expect(() => smp(obj, { metadata: { '$deleteFromPrimitiveList/finalizers': 'a' } })).toThrow('must be a list')
  })

  it('$patch: replace replaces a list or a map; $patch: delete empties a map or leaves it out', () => {
    const onlyOne = smp(livePod(), { spec: { containers: [{ name: 'solo', image: 'x', env: [{ name: 'Z', value: null }] }, { $patch: 'replace' }] } }) as PodLike
    expect(onlyOne.spec.containers).toEqual([{ name: 'solo', image: 'x', env: [{ name: 'Z' }] }])
    expect((smp(livePod(), { metadata: { labels: { $patch: 'replace', app: 'new' } } }) as PodLike).metadata.labels).toEqual({ app: 'new' })
    expect((smp(livePod(), { metadata: { labels: { $patch: 'delete' } } }) as PodLike).metadata.labels).toEqual({})
    expect(smp(livePod(), { spec: { securityContext: { $patch: 'delete' } } })).toEqual(livePod())
  })

  it('$retainKeys clears the fields of a union it does not list (Deployment strategy switch)', () => {
    const deployment = { spec: { strategy: { type: 'RollingUpdate', rollingUpdate: { maxSurge: 1, maxUnavailable: 0 } } } }
    const patch = { spec: { strategy: { $retainKeys: ['type'], type: 'Recreate', rollingUpdate: null } } }
    expect(smp(deployment, patch)).toEqual({ spec: { strategy: { type: 'Recreate' } } })
    expect(() => smp(deployment, { spec: { strategy: { $retainKeys: ['type'], rollingUpdate: {} } } })).toThrow('is not retained')
    expect(() => smp(deployment, { spec: { strategy: { $retainKeys: 'type' } } })).toThrow('must be a list of field names')
  })

  it('resolves directives and nulls inside values that are new to the object', () => {
    const patch = { spec: { containers: [{ name: 'side', '$setElementOrder/env': [{ name: 'X' }], env: [{ name: 'X', value: '1' }, { name: 'Y', $patch: 'delete' }], args: null }] } }
    const result = smp({ spec: { containers: [] } }, patch)
    expect(result).toEqual({ spec: { containers: [{ name: 'side', env: [{ name: 'X', value: '1' }] }] } })
    expect(smp({ a: 'text' }, { a: { b: 1, c: null } })).toEqual({ a: { b: 1 } })
  })

  it('uses a schema given by the caller for kinds added later', () => {
    const schema = combineSchemas(defaultPatchSchema, { 'spec.workers': { strategy: 'merge', mergeKey: 'id' } })
    const crd = { spec: { workers: [{ id: 1, size: 's' }, { id: 2, size: 's' }] } }
    expect(smp(crd, { spec: { workers: [{ id: 2, size: 'l' }] } }, schema)).toEqual({ spec: { workers: [{ id: 1, size: 's' }, { id: 2, size: 'l' }] } })
    expect(smp(crd, { spec: { workers: [{ id: 2, size: 'l' }] } })).toEqual({ spec: { workers: [{ id: 2, size: 'l' }] } })
    expect(strategicMergePatch(frozen({ x: [1] }), frozen({ x: [2] }), { x: { strategy: 'merge' } })).toEqual({ x: [2, 1] })
  })

  it.each([
    ['a patch that is not an object', livePod(), [], 'must be a JSON object'],
    ['an original that is not an object', 'x', {}, 'applies to a JSON object'],
    ['an element without its merge key', livePod(), { spec: { containers: [{ image: 'x' }] } }, 'does not contain declared merge key: name'],
    ['a delete without the merge key', livePod(), { spec: { containers: [{ $patch: 'delete' }] } }, 'does not contain declared merge key: name'],
    ['an unknown $patch on a map', livePod(), { metadata: { labels: { $patch: 'frob' } } }, 'unknown patch type "frob"'],
    ['an unknown $patch in a list', livePod(), { spec: { volumes: [{ name: 'data', $patch: 'frob' }] } }, 'unknown patch type "frob"'],
    ['$patch: merge in a list', livePod(), { spec: { volumes: [{ $patch: 'merge' }] } }, 'merging lists cannot yet be specified'],
    ['mixed element types', { metadata: { finalizers: ['a'] } }, { metadata: { finalizers: [{ a: 1 }] } }, 'list element types are not identical'],
    ['lists of lists', { metadata: { finalizers: ['a'] } }, { metadata: { finalizers: [['b']] } }, 'lists of lists are not supported'],
    ['a directive naming no field', livePod(), { spec: { '$setElementOrder/': [] } }, 'names no field'],
  ])('rejects %s', (_name, original, patch, message) => {
    expect(() => smp(original, patch)).toThrow(InvalidPatchError)
    expect(() => smp(original, patch)).toThrow(message)
  })

  it('rejects merging a list of objects whose schema entry has no merge key', () => {
    expect(() => smp({ a: [{ x: 1 }] }, { a: [{ x: 2 }] }, { a: { strategy: 'merge' } })).toThrow('cannot merge lists without a merge key at "a"')
  })
})

// ---------------------------------------------------------------- properties

const key = fc.constantFrom('a', 'b', 'c', 'd', 'e')
const primitive = fc.oneof(fc.integer({ min: -3, max: 3 }), fc.constantFrom('x', 'y', ''), fc.boolean())
// JSON without nulls (merge patch cannot express "set to null") and with lists of primitives only.
const { value: jsonValue, object: jsonObject } = fc.letrec<{ value: unknown; object: Record<string, unknown> }>((tie) => ({
  value: fc.oneof({ depthSize: 'small' }, primitive, fc.array(primitive, { maxLength: 3 }), tie('object')),
  object: fc.dictionary(key, tie('value'), { maxKeys: 4 }),
}))
const patchObject = fc.dictionary(key, fc.oneof(jsonValue, fc.constant(null)), { maxKeys: 4 })

const isPlainObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v)

/** The merge patch that turns x into y. */
function mergeDiff(x: Record<string, unknown>, y: Record<string, unknown>): Record<string, unknown> {
  const patch: Record<string, unknown> = {}
  for (const k of Object.keys(x)) if (!Object.hasOwn(y, k)) patch[k] = null
  for (const [k, v] of Object.entries(y)) {
    const old = x[k]
    if (isPlainObject(old) && isPlainObject(v)) {
      const nested = mergeDiff(old, v)
      if (Object.keys(nested).length > 0) patch[k] = nested
    } else if (JSON.stringify(old) !== JSON.stringify(v)) patch[k] = v
  }
  return patch
}

describe('patch properties', () => {
  it('merge patch with diff(x, y) turns x into y, and applying it again changes nothing', () => {
    fc.assert(
      fc.property(jsonObject, jsonObject, (x, y) => {
        const diff = frozen(mergeDiff(x, y))
        const once = applyMergePatch(frozen(x), diff)
        expect(once).toEqual(y)
        expect(applyMergePatch(frozen(once), diff)).toEqual(once)
      }),
    )
  })

  it('applying {} (or an empty JSON patch) is the identity for all three types', () => {
    fc.assert(
      fc.property(jsonObject, (x) => {
        const original = frozen(x)
        expect(applyPatch(original, frozen({}), 'application/merge-patch+json')).toEqual(x)
        expect(applyPatch(original, frozen({}), 'application/strategic-merge-patch+json')).toEqual(x)
        expect(applyPatch(original, frozen([]), 'application/json-patch+json')).toEqual(x)
      }),
    )
  })

  it('strategic merge patch equals merge patch where no schema path applies', () => {
    fc.assert(
      fc.property(jsonObject, patchObject, (x, patch) => {
        expect(strategicMergePatch(frozen(x), frozen(patch), {})).toEqual(applyMergePatch(x, patch))
      }),
    )
  })

  it('a JSON patch add then remove of a new member is the identity; test sees what replace wrote', () => {
    fc.assert(
      fc.property(jsonObject, jsonValue, jsonValue, (x, added, replaced) => {
        const doc = frozen({ ...x, z: 0 })
        const ops = [{ op: 'add', path: '/new', value: added }, { op: 'remove', path: '/new' }, { op: 'replace', path: '/z', value: replaced }, { op: 'test', path: '/z', value: replaced }]
        expect(applyJsonPatch(doc, frozen(ops))).toEqual({ ...x, z: replaced })
      }),
    )
  })

  const container = fc.record({ name: fc.constantFrom('a', 'b', 'c', 'd', 'e'), image: fc.constantFrom('x:1', 'x:2', 'y:1') })
  const containers = fc.uniqueArray(container, { selector: (c) => c.name, maxLength: 5 })

  it('strategic merge of containers is idempotent, keeps every container once and applies every image', () => {
    fc.assert(
      fc.property(containers, containers, (live, patchList) => {
        const patch = frozen({ spec: { containers: patchList } })
        const once = strategicMergePatch(frozen({ spec: { containers: live } }), patch) as { spec: { containers: typeof live } }
        expect(strategicMergePatch(frozen(once), patch)).toEqual(once)
        const expected = new Map([...live, ...patchList].map((c) => [c.name, c.image]))
        expect(new Map(once.spec.containers.map((c) => [c.name, c.image]))).toEqual(expected)
        expect(once.spec.containers).toHaveLength(expected.size)
      }),
    )
  })

  it('kubectl apply with a full $setElementOrder yields exactly the desired order', () => {
    fc.assert(
      fc.property(containers, fc.infiniteStream(fc.boolean()), (desired, keep) => {
        const live = desired.filter(() => keep.next().value).reverse()
        const patch = frozen({ spec: { '$setElementOrder/containers': desired.map((c) => ({ name: c.name })), containers: desired } })
        const result = strategicMergePatch(frozen({ spec: { containers: live } }), patch) as { spec: { containers: typeof live } }
        expect(result.spec.containers).toEqual(desired)
      }),
    )
  })
})
