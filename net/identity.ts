// What a peer keeps in its data directory to stay itself: its libp2p key
// (so a restarted peer keeps its PeerId) and the cluster secret (the
// pre-shared key of libp2p's private network: without it, no connection).
import { randomBytes } from 'node:crypto'
import { readFile, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { generateKeyPair, privateKeyFromProtobuf, privateKeyToProtobuf } from '@libp2p/crypto/keys'
import type { PrivateKey } from '@libp2p/interface'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'

const peerKeyFile = 'peer.key'

export class ClusterSecretError extends Error {
  override readonly name = 'ClusterSecretError'
}

/** Load the peer's key from `dataDir`, creating it on first start. */
export async function loadOrCreatePeerKey(dataDir: string): Promise<PrivateKey> {
  const path = join(dataDir, peerKeyFile)
  try {
    return privateKeyFromProtobuf(await readFile(path))
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err
  }
  const key = await generateKeyPair('Ed25519')
  await writeFile(path, privateKeyToProtobuf(key), { mode: 0o600, flag: 'wx' })
  return key
}

export function peerIdOf(key: PrivateKey): string {
  return peerIdFromPrivateKey(key).toString()
}

/** 32 random bytes, as 64 hex characters: the form that goes into join tokens. */
export function generateClusterSecret(): string {
  return randomBytes(32).toString('hex')
}

export function checkClusterSecret(secret: string): string {
  if (!/^[0-9a-f]{64}$/.test(secret)) throw new ClusterSecretError('the cluster secret must be 64 hexadecimal characters')
  return secret
}

/** The swarm key file format @libp2p/pnet reads. */
export function pnetKey(secret: string): Uint8Array {
  return new TextEncoder().encode(`/key/swarm/psk/1.0.0/\n/base16/\n${checkClusterSecret(secret)}`)
}
