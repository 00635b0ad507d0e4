// PATCH bodies applied as the Kubernetes API server applies them: JSON Patch (RFC 6902),
// JSON Merge Patch (RFC 7386) and strategic merge patch. Pure: the inputs are never mutated,
// and the result shares no objects with them (callers may freely edit it).
import { applyJsonPatch, applyMergePatch } from './json-patch.js'
import { PatchContentType, UnsupportedPatchTypeError } from './patch-errors.js'
import { defaultPatchSchema, type PatchSchema } from './patch-schemas.js'
import { strategicMergePatch } from './strategic-merge.js'

export { applyJsonPatch, applyMergePatch } from './json-patch.js'
export { InvalidPatchError, PatchContentType, UnsupportedPatchTypeError } from './patch-errors.js'
export * from './patch-schemas.js'
export { strategicMergePatch } from './strategic-merge.js'

export function applyPatch(original: unknown, patch: unknown, contentType: string, schema: PatchSchema = defaultPatchSchema): unknown {
  const mediaType = (contentType.split(';')[0] ?? '').trim().toLowerCase()
  switch (mediaType) {
    case PatchContentType.json:
      return applyJsonPatch(original, patch)
    case PatchContentType.merge:
      return applyMergePatch(original, patch)
    case PatchContentType.strategicMerge:
      return strategicMergePatch(original, patch, schema)
    default:
      throw new UnsupportedPatchTypeError(contentType)
  }
}
