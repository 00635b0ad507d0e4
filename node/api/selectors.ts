// Label and field selectors, parsed, matched and printed as k8s.io/apimachinery's
// pkg/labels and pkg/fields do, with the same error messages.
export * from './label-selectors.js'
export { parseLabelSelector } from './label-selector-parser.js'
export * from './field-selectors.js'
