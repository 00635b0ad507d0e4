// The protobuf messages of apps/v1 Deployment and the pod template in it:
// kubectl 1.32's `kubectl create deployment` sends its object as protobuf
// (1.27 sends JSON). Field numbers are those of k8s.io/api apps/v1 and core/v1
// generated.proto. Only the fields a typed client fills in when creating a
// workload are described; others are skipped, as an older server skips fields
// it does not know. Probes and volume sources, whose protobuf nests what JSON
// inlines, are among those left out: kubectl's typed create commands never
// send them.
import type { Message } from './protobuf.js'

const containerPort: Message = {
  1: { name: 'name', type: 'string' },
  2: { name: 'hostPort', type: 'int' },
  3: { name: 'containerPort', type: 'int' },
  4: { name: 'protocol', type: 'string' },
  5: { name: 'hostIP', type: 'string' },
}

const envVar: Message = { 1: { name: 'name', type: 'string' }, 2: { name: 'value', type: 'string' } }

const resourceRequirements: Message = {
  1: { name: 'limits', type: 'quantityMap' },
  2: { name: 'requests', type: 'quantityMap' },
}

const container: Message = {
  1: { name: 'name', type: 'string' },
  2: { name: 'image', type: 'string' },
  3: { name: 'command', type: 'string', repeated: true },
  4: { name: 'args', type: 'string', repeated: true },
  5: { name: 'workingDir', type: 'string' },
  6: { name: 'ports', type: containerPort, repeated: true },
  7: { name: 'env', type: envVar, repeated: true },
  8: { name: 'resources', type: resourceRequirements, keepEmpty: true },
  13: { name: 'terminationMessagePath', type: 'string' },
  14: { name: 'imagePullPolicy', type: 'string' },
  16: { name: 'stdin', type: 'bool' },
  17: { name: 'stdinOnce', type: 'bool' },
  18: { name: 'tty', type: 'bool' },
  20: { name: 'terminationMessagePolicy', type: 'string' },
}

const toleration: Message = {
  1: { name: 'key', type: 'string' },
  2: { name: 'operator', type: 'string' },
  3: { name: 'value', type: 'string' },
  4: { name: 'effect', type: 'string' },
  5: { name: 'tolerationSeconds', type: 'int', pointer: true },
}

const podSpec: Message = {
  2: { name: 'containers', type: container, repeated: true },
  3: { name: 'restartPolicy', type: 'string' },
  4: { name: 'terminationGracePeriodSeconds', type: 'int', pointer: true },
  5: { name: 'activeDeadlineSeconds', type: 'int', pointer: true },
  6: { name: 'dnsPolicy', type: 'string' },
  7: { name: 'nodeSelector', type: 'stringMap' },
  8: { name: 'serviceAccountName', type: 'string' },
  10: { name: 'nodeName', type: 'string' },
  11: { name: 'hostNetwork', type: 'bool' },
  16: { name: 'hostname', type: 'string' },
  17: { name: 'subdomain', type: 'string' },
  19: { name: 'schedulerName', type: 'string' },
  20: { name: 'initContainers', type: container, repeated: true },
  22: { name: 'tolerations', type: toleration, repeated: true },
  24: { name: 'priorityClassName', type: 'string' },
  30: { name: 'enableServiceLinks', type: 'bool', pointer: true },
}

const labelSelectorRequirement: Message = { 1: { name: 'key', type: 'string' }, 2: { name: 'operator', type: 'string' }, 3: { name: 'values', type: 'string', repeated: true } }
const labelSelector: Message = { 1: { name: 'matchLabels', type: 'stringMap' }, 2: { name: 'matchExpressions', type: labelSelectorRequirement, repeated: true } }

const rollingUpdateDeployment: Message = { 1: { name: 'maxUnavailable', type: 'intOrString' }, 2: { name: 'maxSurge', type: 'intOrString' } }
const deploymentStrategy: Message = { 1: { name: 'type', type: 'string' }, 2: { name: 'rollingUpdate', type: rollingUpdateDeployment } }

/** The apps/v1 messages keyed as protobuf.ts keys them (`apiVersion/Kind`), built on its ObjectMeta. */
export function appsMessages(objectMeta: Message): Record<string, Message> {
  const podTemplateSpec: Message = { 1: { name: 'metadata', type: objectMeta }, 2: { name: 'spec', type: podSpec } }
  const deploymentSpec: Message = {
    1: { name: 'replicas', type: 'int', pointer: true },
    2: { name: 'selector', type: labelSelector },
    3: { name: 'template', type: podTemplateSpec },
    4: { name: 'strategy', type: deploymentStrategy },
    5: { name: 'minReadySeconds', type: 'int' },
    6: { name: 'revisionHistoryLimit', type: 'int', pointer: true },
    7: { name: 'paused', type: 'bool' },
    9: { name: 'progressDeadlineSeconds', type: 'int', pointer: true },
  }
  // The status is the controller's to write: it is not read from a create.
  return { 'apps/v1/Deployment': { 1: { name: 'metadata', type: objectMeta }, 2: { name: 'spec', type: deploymentSpec } } }
}
