// Builds and signs X.509 v3 certificates synchronously. The ASN.1 structures
// come from @peculiar/asn1-x509 (the layer under @peculiar/x509) and the
// signature from node:crypto, so issuing is one plain call: @peculiar/x509's
// generator goes through WebCrypto promises and needs a Reflect polyfill, and
// node-forge cannot sign with ECDSA keys.
import { createHash, randomBytes, sign, type KeyObject } from 'node:crypto'
import { AsnConvert, OctetString } from '@peculiar/asn1-schema'
import {
  AlgorithmIdentifier,
  AttributeTypeAndValue,
  AttributeValue,
  AuthorityKeyIdentifier,
  BasicConstraints,
  Certificate,
  ExtendedKeyUsage,
  Extension,
  Extensions,
  GeneralName,
  KeyIdentifier,
  KeyUsage,
  Name,
  RelativeDistinguishedName,
  SubjectAlternativeName,
  SubjectKeyIdentifier,
  SubjectPublicKeyInfo,
  TBSCertificate,
  Validity,
  Version,
  id_ce_authorityKeyIdentifier,
  id_ce_basicConstraints,
  id_ce_extKeyUsage,
  id_ce_keyUsage,
  id_ce_subjectAltName,
  id_ce_subjectKeyIdentifier,
} from '@peculiar/asn1-x509'

const oidCommonName = '2.5.4.3'
const oidEcdsaWithSha256 = '1.2.840.10045.4.3.2'

/** Key usage bits (RFC 5280 §4.2.1.3), as @peculiar/asn1-x509 numbers them. */
export const keyUsageBits = {
  digitalSignature: 1,
  keyCertSign: 32,
  cRLSign: 64,
} as const

export interface CertificateTemplate {
  /** Subject CN; the only attribute we put in names. */
  commonName: string
  /** The issuer's subject, DER-encoded; absent for a self-signed certificate. */
  issuerNameDer?: Buffer
  /** The issuer's subject key identifier, for the authority key identifier extension. */
  issuerKeyId?: Buffer
  subjectPublicKey: KeyObject
  signingKey: KeyObject
  notBefore: Date
  notAfter: Date
  isCa: boolean
  keyUsage: number
  extKeyUsage?: string[]
  dnsNames?: string[]
  ipAddresses?: string[]
}

export function commonNameDer(commonName: string): Buffer {
  return Buffer.from(AsnConvert.serialize(nameOf(commonName)))
}

function nameOf(commonName: string): Name {
  const atv = new AttributeTypeAndValue({ type: oidCommonName, value: new AttributeValue({ utf8String: commonName }) })
  return new Name([new RelativeDistinguishedName([atv])])
}

/** RFC 5280 §4.2.1.2 method 1: SHA-1 of the subjectPublicKey bits. */
export function keyIdentifier(publicKey: KeyObject): Buffer {
  const spki = AsnConvert.parse(publicKey.export({ type: 'spki', format: 'der' }), SubjectPublicKeyInfo)
  return createHash('sha1').update(Buffer.from(spki.subjectPublicKey)).digest()
}

/** A positive 127-bit serial: random so that re-issued certificates never collide. */
function serialNumber(): ArrayBuffer {
  const bytes = randomBytes(16)
  bytes[0] = (bytes[0]! & 0x7f) | 0x01
  return toArrayBuffer(bytes)
}

function toArrayBuffer(buf: Buffer): ArrayBuffer {
  return buf.buffer.slice(buf.byteOffset, buf.byteOffset + buf.byteLength) as ArrayBuffer
}

function extension(extnID: string, critical: boolean, value: unknown): Extension {
  return new Extension({ extnID, critical, extnValue: new OctetString(AsnConvert.serialize(value)) })
}

function extensionsOf(t: CertificateTemplate, subjectKeyId: Buffer): Extensions {
  const list = [
    extension(id_ce_basicConstraints, true, new BasicConstraints(t.isCa ? { cA: true, pathLenConstraint: 0 } : { cA: false })),
    extension(id_ce_keyUsage, true, new KeyUsage(t.keyUsage)),
    extension(id_ce_subjectKeyIdentifier, false, new SubjectKeyIdentifier(toArrayBuffer(subjectKeyId))),
  ]
  if (t.issuerKeyId) {
    const aki = new AuthorityKeyIdentifier({ keyIdentifier: new KeyIdentifier(toArrayBuffer(t.issuerKeyId)) })
    list.push(extension(id_ce_authorityKeyIdentifier, false, aki))
  }
  if (t.extKeyUsage && t.extKeyUsage.length > 0) {
    list.push(extension(id_ce_extKeyUsage, false, new ExtendedKeyUsage(t.extKeyUsage)))
  }
  const names = [
    ...(t.dnsNames ?? []).map((dNSName) => new GeneralName({ dNSName })),
    ...(t.ipAddresses ?? []).map((iPAddress) => new GeneralName({ iPAddress })),
  ]
  // Not critical: the subject name is non-empty (RFC 5280 §4.2.1.6).
  if (names.length > 0) list.push(extension(id_ce_subjectAltName, false, new SubjectAlternativeName(names)))
  return new Extensions(list)
}

/** Builds, signs and DER-encodes one certificate. Only ECDSA signing keys are supported. */
export function buildCertificate(t: CertificateTemplate): Buffer {
  const subjectKeyId = keyIdentifier(t.subjectPublicKey)
  const subject = nameOf(t.commonName)
  const issuer = t.issuerNameDer ? AsnConvert.parse(t.issuerNameDer, Name) : subject
  // ecdsa-with-SHA256 has absent parameters (RFC 5758 §3.2), not NULL.
  const algorithm = new AlgorithmIdentifier({ algorithm: oidEcdsaWithSha256 })
  const tbs = new TBSCertificate({
    version: Version.v3,
    serialNumber: serialNumber(),
    signature: algorithm,
    issuer,
    validity: new Validity({ notBefore: t.notBefore, notAfter: t.notAfter }),
    subject,
    subjectPublicKeyInfo: AsnConvert.parse(t.subjectPublicKey.export({ type: 'spki', format: 'der' }), SubjectPublicKeyInfo),
    extensions: extensionsOf(t, subjectKeyId),
  })
  const tbsDer = Buffer.from(AsnConvert.serialize(tbs))
  // node:crypto emits ECDSA signatures DER-encoded, the form X.509 wants.
  const signature = sign('sha256', tbsDer, { key: t.signingKey, dsaEncoding: 'der' })
  const cert = new Certificate({ tbsCertificate: tbs, signatureAlgorithm: algorithm, signatureValue: toArrayBuffer(signature) })
  return Buffer.from(AsnConvert.serialize(cert))
}

/** The subject name of a DER certificate, re-encoded, to use as a child's issuer. */
export function subjectNameDer(certDer: Buffer): Buffer {
  const cert = AsnConvert.parse(certDer, Certificate)
  return Buffer.from(AsnConvert.serialize(cert.tbsCertificate.subject))
}

export function derToPem(der: Buffer, label: string): string {
  const lines = der.toString('base64').match(/.{1,64}/g) ?? []
  return `-----BEGIN ${label}-----\n${lines.join('\n')}\n-----END ${label}-----\n`
}
