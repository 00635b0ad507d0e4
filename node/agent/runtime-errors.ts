// Why a container could not start. Each condition is its own class, matched
// by `name`; `waitingReason` is what the pod's container status shows
// (Kubernetes' reasons), and `retryable` says whether the agent should try
// again (with back-off) or wait for the spec to change.

export abstract class ContainerStartError extends Error {
  abstract readonly waitingReason: string
  abstract readonly retryable: boolean
}

/** The image could not be pulled (or, in the process runtime, the program does not exist). */
export class ImagePullError extends ContainerStartError {
  override readonly name = 'ImagePullError'
  readonly waitingReason = 'ErrImagePull'
  readonly retryable = true
}

/** `imagePullPolicy: Never` and the image is not present. */
export class ImageNeverPullError extends ContainerStartError {
  override readonly name = 'ImageNeverPullError'
  readonly waitingReason = 'ErrImageNeverPull'
  readonly retryable = true
}

/** The image name cannot be parsed. */
export class InvalidImageNameError extends ContainerStartError {
  override readonly name = 'InvalidImageNameError'
  readonly waitingReason = 'InvalidImageName'
  readonly retryable = false
}

/** The engine refused to create the container (bad mount, bad working dir, ...). */
export class CreateContainerError extends ContainerStartError {
  override readonly name = 'CreateContainerError'
  readonly waitingReason = 'CreateContainerError'
  readonly retryable = true
}

/** The container was created but would not start (exec format error, missing command). */
export class RunContainerError extends ContainerStartError {
  override readonly name = 'RunContainerError'
  readonly waitingReason = 'RunContainerError'
  readonly retryable = true
}

/** The pod was removed while one of its containers was starting: that start was undone. */
export class PodRemovedError extends ContainerStartError {
  override readonly name = 'PodRemovedError'
  readonly waitingReason = 'ContainerCreating'
  readonly retryable = false
}

/** The container runtime itself does not answer. */
export class RuntimeUnavailableError extends Error {
  override readonly name = 'RuntimeUnavailableError'
}

/** `exec` or `logs` named a container (or, for `previous`, a run) this runtime does not have. */
export class ContainerNotFoundError extends Error {
  override readonly name = 'ContainerNotFoundError'
}

/** `exec` asked of a container whose current run is not running. */
export class ContainerNotRunningError extends Error {
  override readonly name = 'ContainerNotRunningError'
}

/** `exec`'s command ran past its timeout. The process runtime kills it; engines cannot kill an exec, so there it may run on. */
export class ExecTimeoutError extends Error {
  override readonly name = 'ExecTimeoutError'
}
