// Errors become Kubernetes Status objects by name; a write that certainly did
// not happen must not look like a server fault.
import { describe, expect, it } from 'vitest'
import { PeerUnreachableError, RpcTimeoutError } from '../../net/rpc.js'
import { toStatusError } from '../../node/api/status.js'

describe('errors as Status', () => {
  it('a leader that cannot be reached is 503 ServiceUnavailable, a call that timed out 504, anything unknown 500', () => {
    expect(toStatusError(new PeerUnreachableError('peer x is unreachable: ECONNREFUSED'))).toMatchObject({ code: 503, reason: 'ServiceUnavailable' })
    expect(toStatusError(new RpcTimeoutError('propose did not answer'))).toMatchObject({ code: 504, reason: 'Timeout' })
    expect(toStatusError(new Error('something else'))).toMatchObject({ code: 500, reason: 'InternalError' })
  })
})
