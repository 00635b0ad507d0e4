// vitest setup: libp2p 3 calls Promise.withResolvers, which Node 20 lacks.
import '../net/polyfill.js'
