// What a new cluster needs before its API can serve, made once by whichever
// peer leads: the cluster CA and the admin token (replicated as internal
// settings, so every peer can issue its own serving certificate), the service
// CIDR cluster IPs come from, and the namespaces Kubernetes users expect. Idempotent; runs until all exist.
import type { RaftDriver } from '../consensus/driver.js'
import { submit, type Submitter } from './api/submit.js'
import { prepareCreate } from './api/prepare.js'
import type { KindRegistry } from './kinds/kind.js'
import { encodeCommand, type ClusterRegistry } from './registry.js'
import { createAdminToken, createClusterCa, serializeCaMaterial } from './security/ca.js'
import type { ObjectStore } from './store/object-store.js'
import { serviceCidrSettingKey } from './kinds/service-allocation.js'

export const caSettingKey = 'shoal.ca'
export const adminTokenSettingKey = 'shoal.adminToken'
export const defaultNamespaces = ['default', 'kube-system', 'kube-public', 'kube-node-lease']

export interface BootstrapOptions {
  driver: RaftDriver
  registry: ClusterRegistry
  store: ObjectStore
  kinds: KindRegistry
  submitter: Submitter
  /** The service CIDR this peer was started with: the cluster's, when this peer bootstraps it. */
  serviceCidr: string
}

export class ClusterBootstrapper {
  private timer: ReturnType<typeof setInterval> | null = null
  private busy = false

  constructor(private readonly options: BootstrapOptions) {}

  start(): void {
    this.timer = setInterval(() => void this.round(), 500)
    void this.round()
  }

  stop(): void {
    if (this.timer !== null) clearInterval(this.timer)
    this.timer = null
  }

  /** Everything exists (on this peer's replica). */
  complete(): boolean {
    const { registry, store } = this.options
    return registry.settings.has(caSettingKey) && registry.settings.has(adminTokenSettingKey) && registry.settings.has(serviceCidrSettingKey) && defaultNamespaces.every((name) => store.get({ apiVersion: 'v1', kind: 'Namespace', name }) !== undefined)
  }

  private async round(): Promise<void> {
    const { driver, registry, store, kinds, submitter } = this.options
    if (this.busy || driver.node.role !== 'leader') return
    if (this.complete()) return this.stop()
    this.busy = true
    try {
      if (!registry.settings.has(caSettingKey)) await driver.propose(encodeCommand({ op: 'set', key: caSettingKey, value: serializeCaMaterial(createClusterCa()) }))
      if (!registry.settings.has(adminTokenSettingKey)) await driver.propose(encodeCommand({ op: 'set', key: adminTokenSettingKey, value: createAdminToken() }))
      if (!registry.settings.has(serviceCidrSettingKey)) await driver.propose(encodeCommand({ op: 'set', key: serviceCidrSettingKey, value: this.options.serviceCidr }))
      const namespaceKind = kinds.byKind('v1', 'Namespace')!
      for (const name of defaultNamespaces) {
        if (store.get({ apiVersion: 'v1', kind: 'Namespace', name }) !== undefined) continue
        const { object } = prepareCreate(namespaceKind, { metadata: { name } }, undefined, 'Strict', new Date().toISOString())
        await submit(submitter, { op: 'obj.create', object })
      }
    } catch {
      // Leadership moved or a write timed out: the next round (on whichever peer leads) carries on.
    } finally {
      this.busy = false
    }
  }
}
