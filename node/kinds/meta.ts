// Object metadata (ObjectMeta) and the name rules every kind shares.
import { s, type Schema } from '../api/schema.js'

/** DNS-1123 label: Namespace and Service names, label-like values. */
export const dns1123Label = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/
/** DNS-1123 subdomain: most object names. */
export const dns1123Subdomain = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/

export const dns1123LabelHint =
  "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')"
export const dns1123SubdomainHint =
  "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')"

const timestamp = s.string({ description: 'RFC 3339 date and time' })

export const ownerReferenceSchema = s.object(
  {
    apiVersion: s.string(),
    kind: s.string(),
    name: s.string(),
    uid: s.string(),
    controller: s.boolean(),
    blockOwnerDeletion: s.boolean(),
  },
  ['apiVersion', 'kind', 'name', 'uid'],
)

export const objectMetaSchema = s.object({
  name: s.string(),
  generateName: s.string(),
  namespace: s.string(),
  uid: s.string(),
  resourceVersion: s.string(),
  generation: s.integer(),
  creationTimestamp: timestamp,
  deletionTimestamp: timestamp,
  deletionGracePeriodSeconds: s.integer(),
  labels: s.map(s.string()),
  annotations: s.map(s.string()),
  ownerReferences: s.array(ownerReferenceSchema),
  finalizers: s.array(s.string()),
  managedFields: s.array(s.any()),
  selfLink: s.string(),
})

/** The frame every top-level object has: apiVersion, kind, metadata, and the kind's own fields. */
export function topLevel(fields: Record<string, Schema>): Schema {
  return s.object({ apiVersion: s.string(), kind: s.string(), metadata: objectMetaSchema, ...fields }, ['metadata'])
}

export interface OwnerReference {
  apiVersion: string
  kind: string
  name: string
  uid: string
  controller?: boolean
  blockOwnerDeletion?: boolean
}

export interface ObjectMeta {
  name?: string
  generateName?: string
  namespace?: string
  uid?: string
  resourceVersion?: string
  generation?: number
  creationTimestamp?: string
  deletionTimestamp?: string
  deletionGracePeriodSeconds?: number
  labels?: Record<string, string>
  annotations?: Record<string, string>
  ownerReferences?: OwnerReference[]
  finalizers?: string[]
}

/** Any API object as stored: a plain JSON value with apiVersion, kind and metadata. */
export interface ApiObject {
  apiVersion: string
  kind: string
  metadata: ObjectMeta
  [field: string]: unknown
}
