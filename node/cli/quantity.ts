// The CLI's quantities are the shared ones (the scheduler counts with the same parser).
export * from '../kinds/quantity.js'
