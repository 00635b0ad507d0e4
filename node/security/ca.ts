// The cluster certificate authority, the peers' serving certificates and the
// admin token. Everything here is a pure function over PEM strings: the first
// peer creates the CA and token once at bootstrap, Raft replicates them, and
// every peer issues itself a serving certificate at each start.
import { createPrivateKey, createPublicKey, generateKeyPairSync, randomBytes, X509Certificate, type KeyObject } from 'node:crypto'
import { isIP } from 'node:net'
import { buildCertificate, commonNameDer, derToPem, keyIdentifier, keyUsageBits, subjectNameDer } from './x509.js'

/** The CA as replicated through Raft: both halves PEM (certificate, PKCS#8 key). */
export interface CaMaterial {
  certPem: string
  keyPem: string
}

export interface ServingCertificate {
  certPem: string
  keyPem: string
}

export interface ServingCertificateRequest {
  commonName: string
  dnsNames: string[]
  ipAddresses: string[]
}

export interface ValidityOptions {
  /** The issue time; defaults to now. */
  now?: Date
}

/** CA material that does not parse, is not a CA, or whose key does not match. */
export class CaMaterialError extends Error {
  override readonly name = 'CaMaterialError'
}

/** A serving certificate request with a name a TLS client could never match. */
export class CertificateRequestError extends Error {
  override readonly name = 'CertificateRequestError'
}

export const caCommonName = 'shoal-ca'
const caValidityDays = 3650
const servingValidityDays = 365
// Peers' clocks disagree a little; backdating keeps a certificate issued on one
// peer from being "not yet valid" on a client whose clock is behind.
const clockSkewMs = 5 * 60_000
const dayMs = 86_400_000

function newKeyPair(): { publicKey: KeyObject; privateKey: KeyObject } {
  // ECDSA P-256: accepted by Node's TLS and Go's crypto/tls (kubectl), and
  // key generation takes well under a millisecond, unlike RSA.
  return generateKeyPairSync('ec', { namedCurve: 'prime256v1' })
}

function pkcs8Pem(key: KeyObject): string {
  return key.export({ type: 'pkcs8', format: 'pem' }).toString()
}

/** Creates the self-signed cluster CA: ECDSA P-256, CN shoal-ca, valid 10 years. */
export function createClusterCa(opts: ValidityOptions = {}): CaMaterial {
  const now = opts.now ?? new Date()
  const { publicKey, privateKey } = newKeyPair()
  const der = buildCertificate({
    commonName: caCommonName,
    subjectPublicKey: publicKey,
    signingKey: privateKey,
    notBefore: new Date(now.getTime() - clockSkewMs),
    notAfter: new Date(now.getTime() + caValidityDays * dayMs),
    isCa: true,
    keyUsage: keyUsageBits.keyCertSign | keyUsageBits.cRLSign | keyUsageBits.digitalSignature,
  })
  return { certPem: derToPem(der, 'CERTIFICATE'), keyPem: pkcs8Pem(privateKey) }
}

/** The cluster admin's bearer token: 32 random bytes, base64url (43 characters). */
export function createAdminToken(): string {
  return randomBytes(32).toString('base64url')
}

/** One string holding the CA certificate then its key, for storage in one Raft entry. */
export function serializeCaMaterial(ca: CaMaterial): string {
  return ca.certPem.trimEnd() + '\n' + ca.keyPem.trimEnd() + '\n'
}

const pemBlock = /-----BEGIN ([A-Z0-9 ]+)-----[\s\S]*?-----END \1-----\n?/g

/** Parses what serializeCaMaterial wrote, checking it is a CA whose key matches. */
export function parseCaMaterial(text: string): CaMaterial {
  const blocks = [...text.matchAll(pemBlock)]
  const cert = blocks.find((m) => m[1] === 'CERTIFICATE')
  const key = blocks.find((m) => m[1] !== undefined && m[1].endsWith('PRIVATE KEY'))
  if (!cert || !key) throw new CaMaterialError('CA material needs a CERTIFICATE and a PRIVATE KEY PEM block')
  const ca = { certPem: cert[0].trimEnd() + '\n', keyPem: key[0].trimEnd() + '\n' }
  loadCa(ca)
  return ca
}

interface LoadedCa {
  cert: X509Certificate
  der: Buffer
  key: KeyObject
}

function loadCa(ca: CaMaterial): LoadedCa {
  let cert: X509Certificate
  let key: KeyObject
  try {
    cert = new X509Certificate(ca.certPem)
    key = createPrivateKey(ca.keyPem)
  } catch (err) {
    throw new CaMaterialError(`the CA certificate or key does not parse: ${(err as Error).message}`)
  }
  if (!cert.ca) throw new CaMaterialError(`the certificate "${cert.subject}" is not a CA (basicConstraints cA is false)`)
  if (!cert.checkPrivateKey(key)) throw new CaMaterialError('the CA key does not belong to the CA certificate')
  if (key.asymmetricKeyType !== 'ec') {
    // x509.ts signs with ecdsa-with-SHA256 only; we never create other CAs.
    throw new CaMaterialError(`the CA key is ${key.asymmetricKeyType ?? 'unknown'}; only ECDSA CAs can issue here`)
  }
  return { cert, der: Buffer.from(cert.raw), key }
}

// Go's crypto/x509 refuses certificates whose DNS SANs are malformed, so
// reject them here with the offending name instead of at the client.
const dnsLabel = /^(\*|[a-z0-9_]([a-z0-9_-]{0,61}[a-z0-9_])?)$/

function checkDnsName(name: string): string {
  const lower = name.trim().toLowerCase().replace(/\.$/, '')
  const labels = lower.split('.')
  const ok = lower.length > 0 && lower.length <= 253 && labels.every((l, i) => dnsLabel.test(l) && (l !== '*' || i === 0))
  if (!ok) throw new CertificateRequestError(`"${name}" is not a valid DNS name for a certificate`)
  return lower
}

/** Strips an IPv6 zone and unwraps IPv4-mapped IPv6, which the SAN encoder cannot take. */
export function normalizeIp(ip: string): string {
  let text = ip.trim().replace(/^\[|\]$/g, '')
  const zone = text.indexOf('%')
  if (zone >= 0) text = text.slice(0, zone)
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(text)
  if (mapped?.[1] !== undefined) text = mapped[1]
  if (isIP(text) === 0) throw new CertificateRequestError(`"${ip}" is not an IP address`)
  return text.toLowerCase()
}

function checkRequest(opts: ServingCertificateRequest): ServingCertificateRequest {
  const commonName = opts.commonName.trim()
  if (commonName.length === 0 || commonName.length > 64) {
    throw new CertificateRequestError('a serving certificate needs a common name of 1 to 64 characters')
  }
  const dnsNames = [...new Set(opts.dnsNames.map(checkDnsName))]
  const ipAddresses = [...new Set(opts.ipAddresses.map(normalizeIp))]
  if (dnsNames.length + ipAddresses.length === 0) {
    // Modern clients ignore the CN, so a certificate with no SAN matches nothing.
    throw new CertificateRequestError('a serving certificate needs at least one DNS name or IP address')
  }
  return { commonName, dnsNames, ipAddresses }
}

/** Issues a 1-year ECDSA P-256 serverAuth certificate signed by the cluster CA. */
export function issueServingCertificate(ca: CaMaterial, opts: ServingCertificateRequest & ValidityOptions): ServingCertificate {
  const req = checkRequest(opts)
  const issuer = loadCa(ca)
  const now = opts.now ?? new Date()
  const notAfter = new Date(Math.min(now.getTime() + servingValidityDays * dayMs, Date.parse(issuer.cert.validTo)))
  const { publicKey, privateKey } = newKeyPair()
  const der = buildCertificate({
    commonName: req.commonName,
    issuerNameDer: subjectNameDer(issuer.der),
    issuerKeyId: keyIdentifier(createPublicKey(issuer.key)),
    subjectPublicKey: publicKey,
    signingKey: issuer.key,
    notBefore: new Date(now.getTime() - clockSkewMs),
    notAfter,
    isCa: false,
    keyUsage: keyUsageBits.digitalSignature,
    extKeyUsage: ['1.3.6.1.5.5.7.3.1'], // id-kp-serverAuth
    dnsNames: req.dnsNames,
    ipAddresses: req.ipAddresses,
  })
  return { certPem: derToPem(der, 'CERTIFICATE'), keyPem: pkcs8Pem(privateKey) }
}

export interface ServingNamesInput {
  /** os.hostname() of the peer. */
  hostname: string
  /** Hosts (or host:port, [v6]:port) the API listens on. */
  listenHosts: string[]
  /** Addresses of this host's interfaces, used when a listen host is a wildcard. */
  interfaceAddresses?: string[]
}

/** The SANs a peer's serving certificate needs: its hostname, localhost, loopbacks and API addresses. */
export function servingNames(input: ServingNamesInput): { dnsNames: string[]; ipAddresses: string[] } {
  const dnsNames = new Set<string>(['localhost'])
  const ipAddresses = new Set<string>(['127.0.0.1', '::1'])
  if (input.hostname.trim() !== '') dnsNames.add(checkDnsName(input.hostname))
  for (const listen of input.listenHosts) {
    const host = hostOf(listen)
    if (host === '' || host === '0.0.0.0' || host === '::') {
      // A wildcard listener is reachable at every interface address.
      for (const ip of input.interfaceAddresses ?? []) ipAddresses.add(normalizeIp(ip))
    } else if (isIP(host.replace(/%.*$/, '')) !== 0) {
      ipAddresses.add(normalizeIp(host))
    } else {
      dnsNames.add(checkDnsName(host))
    }
  }
  return { dnsNames: [...dnsNames], ipAddresses: [...ipAddresses] }
}

function hostOf(listen: string): string {
  const text = listen.trim()
  const bracketed = /^\[([^\]]+)\](:\d+)?$/.exec(text)
  if (bracketed?.[1] !== undefined) return bracketed[1]
  if (isIP(text.replace(/%.*$/, '')) === 6) return text
  const colon = text.lastIndexOf(':')
  return colon >= 0 ? text.slice(0, colon) : text
}

/** The subject common name, SANs and expiry of a certificate, for logs and `shoal` output. */
export function describeCertificate(certPem: string): { subject: string; subjectAltName: string; validTo: Date; fingerprint256: string } {
  const cert = new X509Certificate(certPem)
  return { subject: cert.subject, subjectAltName: cert.subjectAltName ?? '', validTo: new Date(cert.validTo), fingerprint256: cert.fingerprint256 }
}
