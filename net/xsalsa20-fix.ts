// A fix for xsalsa20 1.2.0, the cipher of libp2p's private networks (pnet).
// All its ciphers share one WebAssembly memory, but each keeps its own view
// of it. When one cipher grows the memory, the others' views go stale (their
// buffers detach, length 0), and their next update "grows" the memory again
// by its whole size. Every connection then re-grows after every other one,
// until the 64 MiB maximum is hit and the peer dies with
// `RangeError: WebAssembly.Memory.grow(): Maximum memory size exceeded`
// (seen on a leader under load). The fix: before an update, a stale view is
// swapped for one of the current memory, which the cipher that grew it last
// holds. Imported by net/host.ts, before any connection exists.
import { createRequire } from 'node:module'

interface WasmCipher {
  _memory: Uint8Array
}

interface XSalsa20Like {
  _xor: WasmCipher | object | null
  update(input: Uint8Array, output?: Uint8Array): Uint8Array
}

const require = createRequire(import.meta.url)
// The same module instance @libp2p/pnet imports (one copy in node_modules).
const xsalsa20 = require('xsalsa20') as { prototype: XSalsa20Like; __shoalFixed?: boolean }

/** The current memory, as last seen by a cipher whose view was live after its update. */
let current: ArrayBuffer | null = null

function isWasm(x: WasmCipher | object | null): x is WasmCipher {
  return x !== null && '_memory' in x
}

if (xsalsa20.__shoalFixed !== true) {
  xsalsa20.__shoalFixed = true
  const update = xsalsa20.prototype.update
  xsalsa20.prototype.update = function patchedUpdate(this: XSalsa20Like, input: Uint8Array, output?: Uint8Array): Uint8Array {
    const x = this._xor
    if (isWasm(x) && current !== null && current.byteLength > 0 && x._memory.buffer !== current) x._memory = new Uint8Array(current)
    const result = update.call(this, input, output)
    if (isWasm(x) && x._memory.byteLength > 0) current = x._memory.buffer as ArrayBuffer
    return result
  }
}

/** The size of the shared memory as `cipher` sees it (tests). */
export function cipherMemoryBytes(cipher: unknown): number {
  const x = (cipher as XSalsa20Like)._xor
  return isWasm(x) ? x._memory.byteLength : 0
}
