// The pods bound to a peer, from its local replica: a snapshot installed from
// the leader replaces the objects without change events, and a pod it no
// longer holds must still be noticed at once (the agent then stops it).
import { afterEach, describe, expect, it } from 'vitest'
import { BoundPods } from '../../node/agent/bound-pods.js'
import { coreKinds } from '../../node/kinds/cluster.js'
import type { ApiObject } from '../../node/kinds/meta.js'
import { ObjectStore } from '../../node/store/object-store.js'
import { until } from '../node/process-cluster.js'

const pod = (name: string, nodeName: string): ApiObject => ({ apiVersion: 'v1', kind: 'Pod', metadata: { name, namespace: 'default', uid: `uid-${name}` }, spec: { nodeName, containers: [{ name: 'c', image: 'sleep' }] } }) as ApiObject

let bound: BoundPods | undefined

afterEach(() => bound?.stop())

describe('bound pods', () => {
  it('notices within a couple of seconds that a snapshot install removed a pod bound here', async () => {
    const store = new ObjectStore(coreKinds())
    store.restore([pod('kept', 'n1'), pod('dropped', 'n1'), pod('elsewhere', 'n2')], 10, [])
    const changed: string[] = []
    bound = new BoundPods(store, 'n1', (uid) => changed.push(uid))
    bound.start()
    expect(bound.all().map((p) => p.metadata.name).sort()).toEqual(['dropped', 'kept'])
    changed.length = 0
    // What a peer that was down gets from the leader: the state without the deleted pod, and no events.
    store.restore([pod('kept', 'n1'), pod('elsewhere', 'n2')], 20, [])
    await until(() => changed.includes('uid-dropped'), 2500, 'the dropped pod noticed')
    expect(bound.get('uid-dropped')).toBeUndefined()
    expect(bound.all().map((p) => p.metadata.name)).toEqual(['kept'])
  })
})
