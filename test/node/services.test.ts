// Services on one in-process peer with its agent (process runtime) and its
// service proxy (userspace) and cluster DNS: a Service's cluster IP answers
// from the pod behind it, a NodePort answers on the host, the name resolves to
// the cluster IP, and pods are told where cluster DNS is.
import { createSocket } from 'node:dgram'
import dnsPacket from 'dns-packet'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { startLocalPeer, type LocalPeer } from './local-peer.js'
import { until } from './process-cluster.js'
import { createObject, createPod, deletePod, isReady, podUntil, stopLocalPeerAndPods } from '../agent/agent-helpers.js'

let lp: LocalPeer
const node = process.execPath
const server = `require('node:http').createServer((q, s) => s.end(process.env.HOSTNAME + ' ' + process.env.SHOAL_DNS)).listen(Number(process.env.PORT), process.env.POD_IP)`

beforeAll(async () => {
  lp = await startLocalPeer('services-a', { agent: { runtime: 'process', restartBackoffInitialMs: 300, restartBackoffMaxMs: 4000 }, services: { proxyMode: 'userspace', dnsHost: '127.0.0.1', dnsPort: 0 } })
}, 60_000)

afterAll(async () => {
  await stopLocalPeerAndPods(lp)
})

function query(address: string, name: string): Promise<dnsPacket.Packet> {
  const [host, port] = [address.slice(0, address.lastIndexOf(':')), Number(address.slice(address.lastIndexOf(':') + 1))]
  return new Promise((resolve, reject) => {
    const socket = createSocket('udp4')
    const timer = setTimeout(() => reject(new Error('no DNS answer')), 2000)
    socket.on('message', (msg) => {
      clearTimeout(timer)
      socket.close()
      resolve(dnsPacket.decode(msg))
    })
    socket.send(dnsPacket.encode({ type: 'query', id: 7, flags: dnsPacket.RECURSION_DESIRED, questions: [{ type: 'A', name }] }), port, host)
  })
}

describe('services on a peer', () => {
  it('serves a cluster IP and a NodePort from the pod behind them, and resolves the name to the cluster IP', async () => {
    await createPod(lp.peer, 'web-0', { containers: [{ name: 'web', image: node, args: ['-e', server], ports: [{ name: 'http', containerPort: 8080 }] }] }, { app: 'web' })
    const svc = (await createObject(lp.peer, { apiVersion: 'v1', kind: 'Service', metadata: { name: 'web' }, spec: { type: 'NodePort', selector: { app: 'web' }, ports: [{ port: 80, targetPort: 'http' }] } })) as unknown as { spec: { clusterIP: string; ports: { nodePort: number }[] } }
    await podUntil(lp.peer, 'web-0', (p) => p.status?.phase === 'Running' && isReady(p), 'Running and Ready')
    const vip = svc.spec.clusterIP
    expect(vip).toMatch(/^127\.77\./)
    const viaVip = await until(async () => (await fetch(`http://${vip}/`).catch(() => undefined))?.text(), 10_000, 'an answer on the cluster IP')
    const dnsAddress = lp.peer.services!.dnsAddress
    // The pod was told where cluster DNS is.
    expect(viaVip).toBe(`web-0 ${dnsAddress}`)
    const viaNodePort = await until(async () => (await fetch(`http://127.0.0.1:${svc.spec.ports[0]!.nodePort}/`).catch(() => undefined))?.text(), 10_000, 'an answer on the NodePort')
    expect(viaNodePort).toBe(`web-0 ${dnsAddress}`)
    const answer = await query(dnsAddress, 'web.default.svc.cluster.local')
    expect(answer.answers?.map((a) => (a as { data: string }).data)).toEqual([vip])
  })

  it('stops serving an endpoint that goes: the cluster IP refuses quickly instead of hanging', async () => {
    const svc = lp.peer.state.store.get({ apiVersion: 'v1', kind: 'Service', namespace: 'default', name: 'web' }) as unknown as { spec: { clusterIP: string } }
    await deletePod(lp.peer, 'web-0')
    await until(async () => {
      const started = Date.now()
      const failed = await fetch(`http://${svc.spec.clusterIP}/`).then(() => false, () => true)
      return failed && Date.now() - started < 1000
    }, 10_000, 'a quick refusal once the pod is gone')
  })
})
