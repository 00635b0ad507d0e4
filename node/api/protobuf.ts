// Request bodies in Kubernetes' protobuf encoding. kubectl's typed clients
// send them (`kubectl create namespace`, `kubectl create service ...`) and
// client-go has no fallback to JSON for protobuf, so the server must read them.
// Only the kinds those commands write are described here; answers stay JSON
// (clients accept it: they send Accept: protobuf,json).
//
// The envelope is the 4 bytes "k8s\0" and a runtime.Unknown message holding the
// TypeMeta and the object's own message. Field numbers are those of
// k8s.io/api/core/v1/generated.proto and apimachinery's meta/v1 and intstr.
// Go's encoder writes every non-pointer field, zero or not, so zero values of
// those fields are dropped here: they mean "unset", as JSON's omitempty does.
import { appsMessages } from './protobuf-apps.js'
import { StatusError, badRequest } from './status.js'

export const protobufContentType = 'application/vnd.kubernetes.protobuf'
const envelopeMagic = Buffer.from([0x6b, 0x38, 0x73, 0x00])

/** quantityMap: map<string, resource.Quantity>, as resource requests and limits. */
type FieldType = 'string' | 'int' | 'bool' | 'bytes' | 'time' | 'intOrString' | 'stringMap' | 'quantityMap' | Message

interface Field {
  name: string
  type: FieldType
  repeated?: true
  /** A Go pointer field: present means set, even to a zero value. */
  pointer?: true
  /** A Go struct field that Go's JSON always writes (`resources: {}`): kept when empty, so the object equals what a JSON client sends. */
  keepEmpty?: true
}

export type Message = { readonly [fieldNumber: number]: Field }

const typeMeta: Message = { 1: { name: 'apiVersion', type: 'string' }, 2: { name: 'kind', type: 'string' } }
const unknownEnvelope: Message = { 1: { name: 'typeMeta', type: typeMeta }, 2: { name: 'raw', type: 'bytes' }, 3: { name: 'contentEncoding', type: 'string' }, 4: { name: 'contentType', type: 'string' } }

const ownerReference: Message = {
  1: { name: 'kind', type: 'string' },
  3: { name: 'name', type: 'string' },
  4: { name: 'uid', type: 'string' },
  5: { name: 'apiVersion', type: 'string' },
  6: { name: 'controller', type: 'bool', pointer: true },
  7: { name: 'blockOwnerDeletion', type: 'bool', pointer: true },
}

const objectMeta: Message = {
  1: { name: 'name', type: 'string' },
  2: { name: 'generateName', type: 'string' },
  3: { name: 'namespace', type: 'string' },
  5: { name: 'uid', type: 'string' },
  6: { name: 'resourceVersion', type: 'string' },
  7: { name: 'generation', type: 'int' },
  8: { name: 'creationTimestamp', type: 'time' },
  9: { name: 'deletionTimestamp', type: 'time' },
  10: { name: 'deletionGracePeriodSeconds', type: 'int', pointer: true },
  11: { name: 'labels', type: 'stringMap' },
  12: { name: 'annotations', type: 'stringMap' },
  13: { name: 'ownerReferences', type: ownerReference, repeated: true },
  14: { name: 'finalizers', type: 'string', repeated: true },
}

const namespace: Message = {
  1: { name: 'metadata', type: objectMeta },
  2: { name: 'spec', type: { 1: { name: 'finalizers', type: 'string', repeated: true } } },
  3: { name: 'status', type: { 1: { name: 'phase', type: 'string' } } },
}

const servicePort: Message = {
  1: { name: 'name', type: 'string' },
  2: { name: 'protocol', type: 'string' },
  3: { name: 'port', type: 'int' },
  4: { name: 'targetPort', type: 'intOrString' },
  5: { name: 'nodePort', type: 'int' },
  6: { name: 'appProtocol', type: 'string', pointer: true },
}

const serviceSpec: Message = {
  1: { name: 'ports', type: servicePort, repeated: true },
  2: { name: 'selector', type: 'stringMap' },
  3: { name: 'clusterIP', type: 'string' },
  4: { name: 'type', type: 'string' },
  5: { name: 'externalIPs', type: 'string', repeated: true },
  7: { name: 'sessionAffinity', type: 'string' },
  8: { name: 'loadBalancerIP', type: 'string' },
  9: { name: 'loadBalancerSourceRanges', type: 'string', repeated: true },
  10: { name: 'externalName', type: 'string' },
  11: { name: 'externalTrafficPolicy', type: 'string' },
  12: { name: 'healthCheckNodePort', type: 'int' },
  13: { name: 'publishNotReadyAddresses', type: 'bool' },
  17: { name: 'ipFamilyPolicy', type: 'string', pointer: true },
  18: { name: 'clusterIPs', type: 'string', repeated: true },
  19: { name: 'ipFamilies', type: 'string', repeated: true },
  20: { name: 'allocateLoadBalancerNodePorts', type: 'bool', pointer: true },
  21: { name: 'loadBalancerClass', type: 'string', pointer: true },
  22: { name: 'internalTrafficPolicy', type: 'string', pointer: true },
}

// A Service's status is the server's to write: it is not read from a create.
const service: Message = { 1: { name: 'metadata', type: objectMeta }, 2: { name: 'spec', type: serviceSpec } }

const messagesByKind: Record<string, Message> = { 'v1/Namespace': namespace, 'v1/Service': service, ...appsMessages(objectMeta) }

export function isProtobufContentType(contentType: string | undefined): boolean {
  return (contentType ?? '').split(';')[0]!.trim().toLowerCase() === protobufContentType
}

/** A protobuf request body as the JSON object it encodes, or 400/415 saying why not. */
export function decodeProtobufObject(body: Buffer): Record<string, unknown> {
  if (body.length < envelopeMagic.length || !body.subarray(0, envelopeMagic.length).equals(envelopeMagic)) throw badRequest('the protobuf body does not start with the Kubernetes envelope ("k8s\\0")')
  const envelope = decodeMessage(body.subarray(envelopeMagic.length), unknownEnvelope)
  const meta = (envelope.typeMeta ?? {}) as { apiVersion?: string; kind?: string }
  if (envelope.contentEncoding !== undefined) throw unsupported(`content encoding ${String(envelope.contentEncoding)}`)
  const key = `${meta.apiVersion ?? ''}/${meta.kind ?? ''}`
  const message = messagesByKind[key]
  if (message === undefined) throw unsupported(`${meta.kind ?? 'an object without a kind'} (${meta.apiVersion ?? 'no apiVersion'})`)
  const raw = envelope.raw instanceof Buffer ? envelope.raw : Buffer.alloc(0)
  return { apiVersion: meta.apiVersion, kind: meta.kind, ...decodeMessage(raw, message) }
}

function unsupported(what: string): StatusError {
  return new StatusError(415, 'UnsupportedMediaType', `the server reads protobuf bodies for ${Object.keys(messagesByKind).map((k) => k.slice(k.lastIndexOf('/') + 1)).join(', ')} only, not ${what}; send it as JSON or YAML`)
}

class Reader {
  offset = 0
  constructor(readonly bytes: Buffer) {}

  get done(): boolean {
    return this.offset >= this.bytes.length
  }

  varint(): bigint {
    let value = 0n
    // A varint is at most 10 bytes (64 bits, 7 per byte).
    for (let shift = 0n; shift < 70n; shift += 7n) {
      if (this.done) throw badRequest('the protobuf body ends inside a number')
      const byte = this.bytes[this.offset++]!
      value |= BigInt(byte & 0x7f) << shift
      if ((byte & 0x80) === 0) return value
    }
    throw badRequest('the protobuf body holds a number longer than 10 bytes')
  }

  chunk(): Buffer {
    const length = Number(this.varint())
    if (this.offset + length > this.bytes.length) throw badRequest('the protobuf body ends inside a field')
    const out = this.bytes.subarray(this.offset, this.offset + length)
    this.offset += length
    return out
  }

  skip(wireType: number): void {
    if (wireType === 0) this.varint()
    else if (wireType === 2) this.chunk()
    else if (wireType === 1 || wireType === 5) this.offset += wireType === 1 ? 8 : 4
    else throw badRequest(`the protobuf body uses wire type ${wireType}, which Kubernetes objects do not`)
  }
}

function decodeMessage(bytes: Buffer, message: Message): Record<string, unknown> {
  const reader = new Reader(bytes)
  const out: Record<string, unknown> = {}
  while (!reader.done) {
    const key = Number(reader.varint())
    const field = message[key >>> 3]
    const wireType = key & 7
    if (field === undefined) {
      reader.skip(wireType)
      continue
    }
    const value = decodeField(reader, field, wireType)
    if (field.type === 'stringMap' || field.type === 'quantityMap') out[field.name] = { ...(out[field.name] as Record<string, string> | undefined), ...(value as Record<string, string>) }
    else if (field.repeated === true) out[field.name] = [...((out[field.name] as unknown[] | undefined) ?? []), value]
    else if (field.pointer === true || field.keepEmpty === true || !isZero(value)) out[field.name] = value
  }
  return out
}

function decodeField(reader: Reader, field: Field, wireType: number): unknown {
  const expected = field.type === 'int' || field.type === 'bool' ? 0 : 2
  if (wireType !== expected) throw badRequest(`the protobuf field ${field.name} has wire type ${wireType}, not ${expected}`)
  switch (field.type) {
    case 'int':
      return Number(BigInt.asIntN(64, reader.varint()))
    case 'bool':
      return reader.varint() !== 0n
    case 'string':
      return reader.chunk().toString('utf8')
    case 'bytes':
      return reader.chunk()
    case 'time': {
      const t = decodeMessage(reader.chunk(), { 1: { name: 'seconds', type: 'int' }, 2: { name: 'nanos', type: 'int' } }) as { seconds?: number }
      return t.seconds === undefined ? undefined : new Date(t.seconds * 1000).toISOString().replace('.000Z', 'Z')
    }
    case 'intOrString': {
      const v = decodeMessage(reader.chunk(), { 1: { name: 'type', type: 'int' }, 2: { name: 'intVal', type: 'int' }, 3: { name: 'strVal', type: 'string' } }) as { type?: number; intVal?: number; strVal?: string }
      return v.type === 1 ? v.strVal ?? '' : v.intVal ?? 0
    }
    case 'stringMap': {
      const entry = decodeMessage(reader.chunk(), { 1: { name: 'key', type: 'string' }, 2: { name: 'value', type: 'string' } }) as { key?: string; value?: string }
      return { [entry.key ?? '']: entry.value ?? '' }
    }
    case 'quantityMap': {
      const entry = decodeMessage(reader.chunk(), { 1: { name: 'key', type: 'string' }, 2: { name: 'value', type: { 1: { name: 'string', type: 'string' } } } }) as { key?: string; value?: { string?: string } }
      return { [entry.key ?? '']: entry.value?.string ?? '' }
    }
    default:
      return decodeMessage(reader.chunk(), field.type)
  }
}

function isZero(value: unknown): boolean {
  if (value === undefined || value === '' || value === 0 || value === false) return true
  return typeof value === 'object' && value !== null && !(value instanceof Buffer) && Object.keys(value).length === 0
}
