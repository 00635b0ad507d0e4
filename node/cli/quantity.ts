// Kubernetes resource quantities (100m, 2, 128Mi, 1e3, 2G) as numbers, and
// sums printed back the way resource.Quantity prints them: binary suffixes
// when the inputs used them, otherwise decimal ones or millis.

const binary: [string, number][] = [
  ['Ei', 2 ** 60],
  ['Pi', 2 ** 50],
  ['Ti', 2 ** 40],
  ['Gi', 2 ** 30],
  ['Mi', 2 ** 20],
  ['Ki', 2 ** 10],
]
const decimal: [string, number][] = [
  ['E', 1e18],
  ['P', 1e15],
  ['T', 1e12],
  ['G', 1e9],
  ['M', 1e6],
  ['k', 1e3],
]
const fractions: [string, number][] = [
  ['m', 1e-3],
  ['u', 1e-6],
  ['n', 1e-9],
]
const suffixes = new Map<string, number>([...binary, ...decimal, ...fractions, ['', 1]])

export class QuantityError extends Error {
  override readonly name = 'QuantityError'
}

export interface Quantity {
  value: number
  binary: boolean
}

export function parseQuantity(text: string | number | undefined): Quantity {
  if (text === undefined) return { value: 0, binary: false }
  if (typeof text === 'number') return { value: text, binary: false }
  const m = /^([+-]?(?:\d+(?:\.\d*)?|\.\d+))(?:([eE][+-]?\d+)|(Ki|Mi|Gi|Ti|Pi|Ei|n|u|m|k|M|G|T|P|E))?$/.exec(text.trim())
  if (m === null) throw new QuantityError(`"${text}" is not a quantity`)
  const base = Number(m[1])
  if (m[2] !== undefined) return { value: base * 10 ** Number(m[2].slice(1)), binary: false }
  const suffix = m[3] ?? ''
  return { value: base * suffixes.get(suffix)!, binary: suffix.endsWith('i') }
}

function exactMultiple(value: number, unit: number): boolean {
  const n = value / unit
  return Math.abs(n - Math.round(n)) < 1e-9 * Math.max(1, Math.abs(n))
}

/** Canonical text of a quantity: 192Mi, 1500m, 2, 0. */
export function formatQuantity(q: Quantity): string {
  const { value } = q
  if (value === 0) return '0'
  if (q.binary) {
    for (const [suffix, unit] of binary) if (Math.abs(value) >= unit && exactMultiple(value, unit)) return `${Math.round(value / unit)}${suffix}`
  }
  if (exactMultiple(value, 1)) {
    for (const [suffix, unit] of decimal) if (Math.abs(value) >= unit && exactMultiple(value, unit)) return `${Math.round(value / unit)}${suffix}`
    return String(Math.round(value))
  }
  for (const [suffix, unit] of fractions) if (exactMultiple(value, unit)) return `${Math.round(value / unit)}${suffix}`
  return `${Math.round(value / 1e-9)}n`
}

export function addQuantities(a: Quantity, b: Quantity): Quantity {
  // The sum keeps the first operand's format, as resource.Quantity.Add does; zero takes the other's.
  return { value: a.value + b.value, binary: a.value === 0 ? b.binary : a.binary }
}

export function maxQuantity(a: Quantity, b: Quantity): Quantity {
  return b.value > a.value ? b : a
}

/** Percent of a capacity, truncated as kubectl truncates it; 0 when there is no capacity. */
export function percentOf(part: Quantity, whole: Quantity): number {
  return whole.value <= 0 ? 0 : Math.trunc((part.value / whole.value) * 100)
}
