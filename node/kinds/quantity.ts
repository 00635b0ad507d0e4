// Kubernetes resource quantities (100m, 2, 128Mi, 1e3, 2G): exact integer
// values as resource.Quantity's Value and MilliValue give them (the scheduler
// adds and compares these), and approximate numbers with sums printed back the
// way resource.Quantity prints them (the CLI's describe): binary suffixes when
// the inputs used them, otherwise decimal ones or millis.

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

const quantityPattern = /^([+-]?)(\d+(?:\.\d*)?|\.\d+)(?:[eE]([+-]?\d+)|(Ki|Mi|Gi|Ti|Pi|Ei|n|u|m|k|M|G|T|P|E))?$/
const decimalExponents: Record<string, number> = { n: -9, u: -6, m: -3, '': 0, k: 3, M: 6, G: 9, T: 12, P: 15, E: 18 }
const binaryExponents: Record<string, number> = { Ki: 10, Mi: 20, Gi: 30, Ti: 40, Pi: 50, Ei: 60 }
/** Past this power of ten a value is beyond any resource (and a BigInt power would only cost time). */
const decimalExponentMax = 40

/** The quantity times 10^scale, rounded up (towards +infinity) to an integer, computed exactly. */
function scaledValue(text: string | number | undefined, scale: number): number {
  if (text === undefined) return 0
  const source = typeof text === 'number' ? String(text) : text.trim()
  const m = quantityPattern.exec(source)
  if (m === null) throw new QuantityError(`"${text}" is not a quantity`)
  const [, sign = '', number = '', exponent, suffix = ''] = m
  const [whole = '', fraction = ''] = number.split('.')
  const digits = BigInt(`${whole}${fraction}` || '0')
  if (digits === 0n) return 0
  const negative = sign === '-'
  const power = scale - fraction.length + (exponent !== undefined ? Number(exponent) : (decimalExponents[suffix] ?? 0))
  const numerator = digits * (1n << BigInt(binaryExponents[suffix] ?? 0))
  if (power > decimalExponentMax) return negative ? -Infinity : Infinity
  let magnitude: bigint
  if (power >= 0) magnitude = numerator * 10n ** BigInt(power)
  // Fewer digits than the divisor's: a fraction of one unit, which rounds up to 1 (or 0 below zero).
  else if (-power > numerator.toString().length) magnitude = negative ? 0n : 1n
  else {
    const divisor = 10n ** BigInt(-power)
    const floor = numerator / divisor
    // Rounding up: away from zero for positive values, towards zero for negative ones.
    magnitude = !negative && floor * divisor !== numerator ? floor + 1n : floor
  }
  return negative && magnitude !== 0n ? -Number(magnitude) : Number(magnitude)
}

/** resource.Quantity's Value(): whole units, rounded up (`1500m` is 2, `128Mi` is 134217728). */
export function quantityValue(text: string | number | undefined): number {
  return scaledValue(text, 0)
}

/** resource.Quantity's MilliValue(): thousandths, rounded up (`0.5` is 500, `100m` is 100, `1u` is 1). */
export function quantityMilliValue(text: string | number | undefined): number {
  return scaledValue(text, 3)
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
