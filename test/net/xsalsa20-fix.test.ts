// The pnet cipher's shared WebAssembly memory must not grow without end when
// several connections take turns after one of them grew it (it used to, until
// the peer died at 64 MiB: see net/xsalsa20-fix.ts).
import { createRequire } from 'node:module'
import { describe, expect, it } from 'vitest'
import { cipherMemoryBytes } from '../../net/xsalsa20-fix.js'

const require = createRequire(import.meta.url)
const XSalsa20 = require('xsalsa20') as new (nonce: Uint8Array, key: Uint8Array) => { update(input: Uint8Array): Uint8Array }

const key = new Uint8Array(32).fill(7)
const nonce = (n: number): Uint8Array => new Uint8Array(24).fill(n)

describe('xsalsa20 under pnet', () => {
  it('keeps the shared memory bounded when connections take turns after one grew it, and still encrypts the same stream', () => {
    const [a, b, c] = [1, 2, 3].map((n) => new XSalsa20(nonce(n), key))
    a!.update(new Uint8Array(2 * 1024 * 1024))
    const grown = cipherMemoryBytes(a)
    const small = new Uint8Array(1500).fill(42)
    const fromB: Uint8Array[] = []
    for (let round = 0; round < 300; round++) {
      fromB.push(b!.update(small))
      c!.update(small)
      a!.update(small)
    }
    // `a` updated last, so its view is of the memory as it is now (a stale view reads as 0 bytes).
    expect(cipherMemoryBytes(a)).toBe(grown)
    // The same keystream as a cipher that ran alone.
    const alone = new XSalsa20(nonce(2), key)
    const expected = Array.from({ length: 300 }, () => alone.update(small))
    expect(Buffer.concat(fromB).equals(Buffer.concat(expected))).toBe(true)
  })
})
