// The cluster CA and serving certificates against real TLS clients: Node's
// https and, where installed, kubectl (Go's crypto/tls) through a kubeconfig
// from renderKubeconfig.
import { execFile } from 'node:child_process'
import { X509Certificate } from 'node:crypto'
import { existsSync } from 'node:fs'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { createServer, request, type Server } from 'node:https'
import type { IncomingMessage, ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import {
  caCommonName,
  createAdminToken,
  createClusterCa,
  issueServingCertificate,
  normalizeIp,
  parseCaMaterial,
  serializeCaMaterial,
  servingNames,
  type CaMaterial,
  type ServingCertificate,
} from '../../node/security/ca.js'
import { parseKubeconfig, renderKubeconfig } from '../../node/security/kubeconfig.js'

const dayMs = 86_400_000
const servers: Server[] = []

function loopbackCert(ca: CaMaterial): ServingCertificate {
  return issueServingCertificate(ca, { commonName: 'peer-a', dnsNames: ['localhost'], ipAddresses: ['127.0.0.1', '::1'] })
}

async function serve(cert: ServingCertificate, handler: (req: IncomingMessage, res: ServerResponse) => void): Promise<number> {
  const server = createServer({ cert: cert.certPem, key: cert.keyPem }, handler)
  servers.push(server)
  await new Promise<void>((ok) => server.listen(0, '127.0.0.1', ok))
  return (server.address() as AddressInfo).port
}

interface Outcome {
  status?: number
  body?: string
  errorCode?: string
}

/** One GET with a fresh connection (agent: false), so no TLS session is reused between cases. */
function get(port: number, tls: { ca?: string; servername?: string }): Promise<Outcome> {
  return new Promise((done) => {
    const req = request({ host: '127.0.0.1', port, path: '/', agent: false, ...tls }, (res) => {
      let body = ''
      res.setEncoding('utf8')
      res.on('data', (chunk: string) => (body += chunk))
      res.on('end', () => done({ status: res.statusCode ?? 0, body }))
    })
    req.on('error', (err: NodeJS.ErrnoException) => done({ errorCode: err.code ?? err.message }))
    req.end()
  })
}

const hello = (_req: IncomingMessage, res: ServerResponse): void => void res.end('hello')

afterAll(async () => {
  await Promise.all(servers.map((s) => new Promise((ok) => s.close(ok))))
})

describe('cluster CA and serving certificates', () => {
  const ca = createClusterCa()
  const serving = loopbackCert(ca)

  it('creates a 10-year ECDSA P-256 CA named shoal-ca', () => {
    const cert = new X509Certificate(ca.certPem)
    expect(cert.subject).toBe(`CN=${caCommonName}`)
    expect(cert.issuer).toBe(`CN=${caCommonName}`)
    expect(cert.ca).toBe(true)
    expect(cert.verify(cert.publicKey)).toBe(true)
    expect(cert.publicKey.asymmetricKeyDetails?.namedCurve).toBe('prime256v1')
    const years = (Date.parse(cert.validTo) - Date.now()) / (365.25 * dayMs)
    expect(years).toBeGreaterThan(9.9)
    expect(years).toBeLessThan(10.1)
  })

  it('issues a 1-year serverAuth certificate signed by the CA', () => {
    const cert = new X509Certificate(serving.certPem)
    const caCert = new X509Certificate(ca.certPem)
    expect(cert.subject).toBe('CN=peer-a')
    expect(cert.ca).toBe(false)
    expect(cert.checkIssued(caCert)).toBe(true)
    expect(cert.verify(caCert.publicKey)).toBe(true)
    expect(cert.subjectAltName).toBe('DNS:localhost, IP Address:127.0.0.1, IP Address:0:0:0:0:0:0:0:1')
    expect(cert.keyUsage).toEqual(['1.3.6.1.5.5.7.3.1'])
    const days = (Date.parse(cert.validTo) - Date.now()) / dayMs
    expect(days).toBeGreaterThan(364)
    expect(days).toBeLessThan(366)
  })

  it('lets a client trusting only the CA connect, by name localhost and by IP 127.0.0.1', async () => {
    const port = await serve(serving, hello)
    expect(await get(port, { ca: ca.certPem, servername: 'localhost' })).toEqual({ status: 200, body: 'hello' })
    expect(await get(port, { ca: ca.certPem })).toEqual({ status: 200, body: 'hello' })
    expect(await get(port, { ca: ca.certPem, servername: 'elsewhere.example' })).toEqual({ errorCode: 'ERR_TLS_CERT_ALTNAME_INVALID' })
  })

  it('is rejected by a client that does not have the CA', async () => {
    const port = await serve(serving, hello)
    const out = await get(port, {})
    expect(out.errorCode).toMatch(/UNABLE_TO_VERIFY_LEAF_SIGNATURE|UNABLE_TO_GET_ISSUER_CERT_LOCALLY/)
  })

  it('rejects a certificate from a different CA', async () => {
    const other = createClusterCa()
    const port = await serve(loopbackCert(other), hello)
    const out = await get(port, { ca: ca.certPem, servername: 'localhost' })
    expect(out.errorCode).toMatch(/UNABLE_TO_VERIFY_LEAF_SIGNATURE|UNABLE_TO_GET_ISSUER_CERT_LOCALLY|CERT_SIGNATURE_FAILURE/)
  })
})

describe('CA material and requests', () => {
  const ca = createClusterCa()

  it('round-trips the CA through one serialized string', () => {
    const text = serializeCaMaterial(ca)
    expect(parseCaMaterial(text)).toEqual(ca)
    expect(parseCaMaterial(`junk before\n${text}`)).toEqual(ca)
  })

  it('refuses a key that is not the CA key, a non-CA certificate, and garbage', () => {
    const other = createClusterCa()
    expect(() => parseCaMaterial(ca.certPem + other.keyPem)).toThrow(expect.objectContaining({ name: 'CaMaterialError' }))
    const leaf = issueServingCertificate(ca, { commonName: 'x', dnsNames: ['x'], ipAddresses: [] })
    expect(() => parseCaMaterial(leaf.certPem + leaf.keyPem)).toThrow(/not a CA/)
    expect(() => parseCaMaterial('nope')).toThrow(expect.objectContaining({ name: 'CaMaterialError' }))
    expect(() => issueServingCertificate({ certPem: ca.certPem, keyPem: other.keyPem }, { commonName: 'x', dnsNames: ['x'], ipAddresses: [] })).toThrow(
      expect.objectContaining({ name: 'CaMaterialError' }),
    )
  })

  it('refuses names no client could match', () => {
    const issue = (dnsNames: string[], ipAddresses: string[], commonName = 'p'): unknown =>
      issueServingCertificate(ca, { commonName, dnsNames, ipAddresses })
    for (const bad of [() => issue(['bad name'], []), () => issue([], ['300.1.1.1']), () => issue([], []), () => issue(['a'], [], '')]) {
      expect(bad).toThrow(expect.objectContaining({ name: 'CertificateRequestError' }))
    }
  })

  it('normalizes IPs and collects the SANs a peer serves under', () => {
    expect(normalizeIp('::ffff:10.0.0.1')).toBe('10.0.0.1')
    expect(normalizeIp('[fe80::1%eth0]')).toBe('fe80::1')
    const names = servingNames({ hostname: 'Node-1', listenHosts: ['0.0.0.0:6443', '[::1]:6443', '10.0.0.9:6443', 'api.local:6443'], interfaceAddresses: ['192.168.1.4', 'fe80::2%eth0'] })
    expect(names.dnsNames).toEqual(['localhost', 'node-1', 'api.local'])
    expect(names.ipAddresses).toEqual(['127.0.0.1', '::1', '192.168.1.4', 'fe80::2', '10.0.0.9'])
    const cert = new X509Certificate(issueServingCertificate(ca, { commonName: 'node-1', ...names }).certPem)
    expect(cert.checkIP('192.168.1.4')).toBe('192.168.1.4')
    expect(cert.checkHost('node-1')).toBe('node-1')
  })

  it('makes admin tokens of 32 random bytes in base64url', () => {
    const a = createAdminToken()
    expect(a).toMatch(/^[A-Za-z0-9_-]{43}$/)
    expect(Buffer.from(a, 'base64url')).toHaveLength(32)
    expect(createAdminToken()).not.toBe(a)
  })

  it('is fast enough to run at every peer start', () => {
    const rounds = 20
    let t = performance.now()
    for (let i = 0; i < rounds; i++) createClusterCa()
    const caMs = (performance.now() - t) / rounds
    t = performance.now()
    for (let i = 0; i < rounds; i++) issueServingCertificate(ca, { commonName: 'p', dnsNames: ['h', 'localhost'], ipAddresses: ['127.0.0.1', '::1'] })
    const issueMs = (performance.now() - t) / rounds
    console.log(`security timing: createClusterCa ${caMs.toFixed(2)} ms, issueServingCertificate ${issueMs.toFixed(2)} ms (mean of ${rounds})`)
    // Generous bounds: a regression to, say, RSA keygen would take 100+ ms.
    expect(caMs).toBeLessThan(100)
    expect(issueMs).toBeLessThan(100)
  })
})

const kubectls = ['/usr/bin/kubectl', '/usr/lib/google-cloud-sdk/bin/kubectl.1.27'].filter((p) => existsSync(p))
if (kubectls.length === 0) console.warn('security.test: no kubectl at /usr/bin/kubectl; skipping the kubectl tests')

describe.skipIf(kubectls.length === 0)('kubectl against a kubeconfig from renderKubeconfig', () => {
  const ca = createClusterCa()
  const token = createAdminToken()
  const seen: string[] = []
  let dir = ''
  let server = ''

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'shoal-kubeconfig-'))
    const port = await serve(loopbackCert(ca), (req, res) => {
      seen.push(`${req.method ?? ''} ${req.url ?? ''} ${req.headers.authorization ?? '(none)'}`)
      res.setHeader('content-type', 'application/json')
      if (req.headers.authorization !== `Bearer ${token}`) {
        res.statusCode = 401
        res.end(JSON.stringify({ kind: 'Status', apiVersion: 'v1', status: 'Failure', reason: 'Unauthorized', code: 401 }))
      } else if (new URL(req.url ?? '/', 'https://stub').pathname === '/version') {
        res.end(JSON.stringify({ major: '1', minor: '32', gitVersion: 'v1.32.0' }))
      } else {
        res.statusCode = 404
        res.end('{}')
      }
    })
    server = `https://127.0.0.1:${port}`
  })
  afterAll(async () => {
    if (dir !== '') await rm(dir, { recursive: true, force: true })
  })

  async function kubectl(bin: string, tokenToUse: string): Promise<{ code: number; stdout: string; stderr: string }> {
    const file = join(dir, `config-${seen.length}`)
    await writeFile(file, renderKubeconfig({ clusterName: 'shoal', server, caPem: ca.certPem, token: tokenToUse, userName: 'admin', contextName: 'shoal-admin' }))
    // A private HOME keeps kubectl's discovery cache out of the real one; no proxy may intercept loopback.
    const env = { PATH: process.env['PATH'] ?? '/usr/bin:/bin', HOME: dir }
    const args = ['version', '-o', 'json', '--kubeconfig', file, '--request-timeout=10s']
    return new Promise((done) => {
      // Async on purpose: the stub server runs in this process and must keep answering.
      execFile(bin, args, { env, timeout: 30_000 }, (err, stdout, stderr) => {
        const code = err === null ? 0 : typeof err.code === 'number' ? err.code : -1
        done({ code, stdout, stderr })
      })
    })
  }

  for (const bin of kubectls) {
    it(`${bin} verifies the serving certificate and sends the bearer token`, async () => {
      const before = seen.length
      const r = await kubectl(bin, token)
      // kubectl 1.27 warns about version skew against the stub's 1.32; anything else is a failure.
      const stderr = r.stderr.split('\n').filter((l) => l !== '' && !l.startsWith('WARNING: version difference'))
      expect({ code: r.code, stderr }).toEqual({ code: 0, stderr: [] })
      const out = JSON.parse(r.stdout) as { serverVersion?: { gitVersion?: string } }
      expect(out.serverVersion?.gitVersion).toBe('v1.32.0')
      // --request-timeout adds ?timeout=10s to the path.
      expect(seen.slice(before)).toContain(`GET /version?timeout=10s Bearer ${token}`)
    })

    it(`${bin} fails with a wrong token`, async () => {
      const r = await kubectl(bin, createAdminToken())
      expect(r.code).not.toBe(0)
      expect(r.stderr).toMatch(/Unauthorized|logged in/i)
    })
  }
})

describe('kubeconfig', () => {
  const ca = createClusterCa()
  const input = { clusterName: 'prod', server: 'https://10.0.0.5:6443', caPem: ca.certPem, token: createAdminToken(), userName: 'admin', contextName: 'prod-admin' }

  it('round-trips renderKubeconfig through parseKubeconfig', () => {
    expect(parseKubeconfig(renderKubeconfig({ ...input, namespace: 'on' }))).toEqual({
      server: input.server,
      caPem: ca.certPem,
      token: input.token,
      namespace: 'on',
      insecureSkipTlsVerify: false,
      contextName: 'prod-admin',
    })
    expect(parseKubeconfig(renderKubeconfig(input)).namespace).toBe('default')
    // YAML 1.1 readers (kubectl) would take a bare `on` for a boolean.
    expect(renderKubeconfig({ ...input, namespace: 'on' })).toMatch(/namespace: "on"/)
  })

  it('reads certificate-authority and tokenFile paths relative to the file, and insecure-skip-tls-verify', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'shoal-kc-'))
    try {
      await writeFile(join(dir, 'ca.crt'), ca.certPem)
      await writeFile(join(dir, 'token'), 'tok-123\n')
      const text = [
        'apiVersion: v1',
        'kind: Config',
        'clusters:',
        '- name: c',
        '  cluster: {server: "https://h:1", certificate-authority: ca.crt, insecure-skip-tls-verify: true}',
        'users:',
        '- name: u',
        '  user: {tokenFile: token}',
        'contexts:',
        '- {name: x, context: {cluster: c, user: u, namespace: ns}}',
        '- {name: other, context: {cluster: c}}',
        'current-context: x',
      ].join('\n')
      expect(parseKubeconfig(text, { path: join(dir, 'config') })).toEqual({
        server: 'https://h:1',
        caPem: ca.certPem,
        token: 'tok-123',
        namespace: 'ns',
        insecureSkipTlsVerify: true,
        contextName: 'x',
      })
      expect(parseKubeconfig(text, { path: join(dir, 'config'), context: 'other' }).token).toBeUndefined()
      expect(() => parseKubeconfig(text, { path: join(dir, 'elsewhere', 'config') })).toThrow(/cannot read the certificate-authority file/)
    } finally {
      await rm(dir, { recursive: true, force: true })
    }
  })

  it('explains what is wrong with a broken kubeconfig', () => {
    const cases: Array<[string, RegExp]> = [
      ['a: [unclosed', /not valid YAML/],
      ['- a list', /not a YAML mapping/],
      ['clusters: []', /no current-context/],
      ['current-context: nope\ncontexts: []', /no entry named "nope" in "contexts"/],
      ['current-context: x\ncontexts: [{name: x, context: {cluster: c}}]\nclusters: [{name: c, cluster: {}}]', /cluster "c" has no server/],
      [
        'current-context: x\ncontexts: [{name: x, context: {cluster: c, user: u}}]\nclusters: [{name: c, cluster: {server: "https://h"}}]\nusers: [{name: u, user: {client-certificate-data: AA==}}]',
        /authenticates with "client-certificate-data"/,
      ],
      ['current-context: x\ncontexts: [{name: x, context: {cluster: c}}]\nclusters: [{name: c, cluster: {server: "https://h", certificate-authority-data: Zm9v}}]', /not a PEM certificate/],
    ]
    for (const [text, message] of cases) {
      expect(() => parseKubeconfig(text)).toThrow(expect.objectContaining({ name: 'KubeconfigError', message: expect.stringMatching(message) }))
    }
  })
})
