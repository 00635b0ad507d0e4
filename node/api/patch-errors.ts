// The errors a PATCH body can raise, and the media types that name the patch kinds.

export class InvalidPatchError extends Error {
  override readonly name = 'InvalidPatchError'
}

export class UnsupportedPatchTypeError extends Error {
  override readonly name = 'UnsupportedPatchTypeError'
  constructor(readonly contentType: string) {
    super(`unsupported patch type "${contentType}": accepted media types are ${Object.values(PatchContentType).join(', ')}`)
  }
}

export const PatchContentType = {
  json: 'application/json-patch+json',
  merge: 'application/merge-patch+json',
  strategicMerge: 'application/strategic-merge-patch+json',
} as const
