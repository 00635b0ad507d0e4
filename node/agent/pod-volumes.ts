// A pod's volumes on this host: `emptyDir` is a directory of the pod's own
// under the peer's data dir (made when the pod starts, removed with the pod);
// `hostPath` is the host's path, made first when its `type` asks for it.
// Other volume types need objects Shoal does not have (ConfigMaps, Secrets,
// claims): the container waits with CreateContainerConfigError saying so.
import { mkdir, rm, stat } from 'node:fs/promises'
import { join, resolve } from 'node:path'
import type { MountSpec } from './runtime.js'
import { ContainerConfigError } from './pod-env.js'
import type { ContainerJson, PodJson, VolumeJson } from './pod-types.js'

/** Where a pod's own files live on this peer. */
export function podDir(podsDir: string, uid: string): string {
  return join(podsDir, uid)
}

async function ensureHostPath(volume: VolumeJson): Promise<string> {
  const path = volume.hostPath!.path
  const type = volume.hostPath!.type ?? ''
  if (type === 'DirectoryOrCreate') await mkdir(path, { recursive: true })
  if (type === 'Directory' || type === 'File') {
    const info = await stat(path).catch(() => null)
    if (info === null) throw new ContainerConfigError(`hostPath type check failed: ${path} does not exist`)
    if (type === 'Directory' && !info.isDirectory()) throw new ContainerConfigError(`hostPath type check failed: ${path} is not a directory`)
    if (type === 'File' && !info.isFile()) throw new ContainerConfigError(`hostPath type check failed: ${path} is not a file`)
  }
  return path
}

/** Host directories for every volume of the pod, by volume name (emptyDirs created). */
export async function preparePodVolumes(pod: PodJson, podsDir: string): Promise<Map<string, string>> {
  const out = new Map<string, string>()
  for (const v of pod.spec.volumes ?? []) {
    if (v.emptyDir !== undefined) {
      const dir = join(podDir(podsDir, pod.metadata.uid ?? ''), 'volumes', v.name)
      await mkdir(dir, { recursive: true })
      out.set(v.name, dir)
    } else if (v.hostPath !== undefined) {
      out.set(v.name, await ensureHostPath(v))
    }
  }
  return out
}

/** The container's mounts, resolved against the pod's prepared volumes. */
export function containerMounts(pod: PodJson, container: ContainerJson, volumes: Map<string, string>): MountSpec[] {
  return (container.volumeMounts ?? []).map((m) => {
    const hostPath = volumes.get(m.name)
    if (hostPath === undefined) {
      const declared = (pod.spec.volumes ?? []).find((v) => v.name === m.name)
      if (declared === undefined) throw new ContainerConfigError(`volumeMount "${m.name}": no volume of that name in the pod`)
      const kind = Object.keys(declared).find((k) => k !== 'name') ?? 'unknown'
      throw new ContainerConfigError(`volume "${m.name}": ${kind} volumes are not supported (emptyDir and hostPath are)`)
    }
    const sub = m.subPath === undefined || m.subPath === '' ? hostPath : resolve(hostPath, m.subPath)
    if (!sub.startsWith(hostPath)) throw new ContainerConfigError(`volumeMount "${m.name}": subPath "${m.subPath}" leaves the volume`)
    return { name: m.name, mountPath: m.mountPath, hostPath: sub, readOnly: m.readOnly === true }
  })
}

/** Removes the pod's own files (emptyDirs included); hostPaths are the host's and stay. */
export async function removePodFiles(podsDir: string, uid: string): Promise<void> {
  await rm(podDir(podsDir, uid), { recursive: true, force: true })
}
