// metav1.LabelSelector in the apps/v1 kinds (ReplicaSet, Deployment): its
// schema, its validation as Kubernetes words it, whether a pod template's
// labels match it, and how kubectl prints it.
import { keyError, matches, selectorFromLabelSelector, type LabelSelector } from '../api/label-selectors.js'
import { s, type FieldCause } from '../api/schema.js'

export const labelSelectorSchema = s.object({
  matchLabels: s.map(s.string()),
  matchExpressions: s.array(s.object({ key: s.string(), operator: s.string(), values: s.array(s.string()) }, ['key', 'operator'])),
})

const labelValue = /^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$/

/** Kubernetes' ValidateLabelSelector, plus the apps/v1 rule that the selector is given and not empty. */
export function validateLabelSelector(selector: LabelSelector | undefined, path: string): FieldCause[] {
  if (selector === undefined || selector === null) return [{ reason: 'FieldValueRequired', field: path, message: 'Required value' }]
  const causes: FieldCause[] = []
  for (const [key, value] of Object.entries(selector.matchLabels ?? {})) {
    const problem = keyError(key, `${path}.matchLabels`)
    if (problem !== undefined) causes.push({ reason: 'FieldValueInvalid', field: `${path}.matchLabels`, message: problem.slice(`${path}.matchLabels: `.length) })
    if (value.length > 63 || !labelValue.test(value)) {
      causes.push({ reason: 'FieldValueInvalid', field: `${path}.matchLabels`, message: `Invalid value: ${JSON.stringify(value)}: a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character` })
    }
  }
  ;(selector.matchExpressions ?? []).forEach((expression, k) => {
    const at = `${path}.matchExpressions[${k}]`
    const values = expression.values ?? []
    if (expression.operator === 'In' || expression.operator === 'NotIn') {
      if (values.length === 0) causes.push({ reason: 'FieldValueRequired', field: `${at}.values`, message: "Required value: must be specified when `operator` is 'In' or 'NotIn'" })
    } else if (expression.operator === 'Exists' || expression.operator === 'DoesNotExist') {
      if (values.length > 0) causes.push({ reason: 'FieldValueForbidden', field: `${at}.values`, message: "Forbidden: may not be specified when `operator` is 'Exists' or 'DoesNotExist'" })
    } else {
      causes.push({ reason: 'FieldValueInvalid', field: `${at}.operator`, message: `Invalid value: ${JSON.stringify(expression.operator)}: not a valid selector operator` })
    }
    const problem = keyError(expression.key, `${at}.key`)
    if (problem !== undefined) causes.push({ reason: 'FieldValueInvalid', field: `${at}.key`, message: problem.slice(`${at}.key: `.length) })
  })
  if (Object.keys(selector.matchLabels ?? {}).length + (selector.matchExpressions ?? []).length === 0) {
    causes.push({ reason: 'FieldValueInvalid', field: path, message: `Invalid value: ${JSON.stringify(selector)}: empty selector is invalid for deployment` })
  }
  return causes
}

/** The template's labels must be selected by the selector (when the selector itself is valid). */
export function templateLabelsCause(selector: LabelSelector | undefined, labels: Record<string, string> | undefined, path: string): FieldCause[] {
  let parsed
  try {
    parsed = selectorFromLabelSelector(selector)
  } catch {
    return []
  }
  if (parsed.matchesNothing || parsed.requirements.length === 0 || matches(parsed, labels ?? {})) return []
  return [{ reason: 'FieldValueInvalid', field: path, message: `Invalid value: ${JSON.stringify(labels ?? {})}: \`selector\` does not match template \`labels\`` }]
}

/** Kubernetes' FormatLabelSelector: `app=web,tier in (back,front)`, `<none>` when empty, `<error>` when unparsable. */
export function formatLabelSelector(selector: LabelSelector | undefined): string {
  try {
    const text = selectorFromLabelSelector(selector ?? {}).toString()
    return text === '' ? '<none>' : text
  } catch {
    return '<error>'
  }
}
