// The table the service proxy serves, built by node/ from Services and
// Endpoints (net/ never imports node/), and the seam to the peer tunnel.
import type { Socket } from 'node:net'

export interface ProxyEndpoint {
  ip: string
  port: number
  /** The libp2p peer id that can reach it locally; null when this peer can dial it directly. */
  viaPeerId: string | null
}

export interface ProxyServicePort {
  /** Stable across updates, e.g. 'default/redis-master:6379/TCP'. */
  id: string
  vip: string
  port: number
  protocol: 'TCP' | 'UDP'
  sessionAffinity: 'None' | 'ClientIP'
  affinityTimeoutMs: number
  /** Ready endpoints only, in a stable order. */
  endpoints: ProxyEndpoint[]
  /** Also listen on every host address given to the proxy at this port. */
  nodePort?: number
}

/** A byte stream to an endpoint through another peer, connected there and not yet spliced. */
export interface TunnelConnection {
  /** 'direct': the peer-to-peer TLS data path (net/peer-data.ts); 'tunnel': a /shoal/tunnel/1 stream. */
  readonly path: 'direct' | 'tunnel'
  /**
   * Splice with a local socket (accepted with pauseOnConnect, not yet read) both ways
   * (backpressure, half-close); call once. Returns the socket that carries the client
   * from now on (its handle may move to a new Socket, as adoptAcceptedSocket does).
   */
  spliceWith(socket: Socket): Socket
  /** Reset the stream (the client went away before the splice). */
  abort(reason: Error): void
}

/** Opens byte streams to ip:port through the peer `viaPeerId` (net/tunnel.ts implements it on libp2p). */
export interface TunnelDialer {
  /**
   * Resolves once the remote peer has connected to ip:port; rejects (TunnelConnectError,
   * a dial error, the signal's reason) before any client byte was committed, so the
   * caller can try another endpoint.
   */
  dial(viaPeerId: string, ip: string, port: number, signal: AbortSignal): Promise<TunnelConnection>
}

/** One UDP session (one client ip:port) to an endpoint through another peer, datagram boundaries kept. */
export interface DatagramTunnel {
  /** Sends datagrams on to the endpoint; false when dropped (too large, the session closed, or its stream full). */
  send(datagrams: readonly Uint8Array[]): boolean
  /** Ends the session here and on the remote peer. */
  close(): void
}

export interface DatagramTunnelHandlers {
  /** One datagram the endpoint sent back. */
  onDatagram: (datagram: Uint8Array) => void
  /** The session ended from the far side (its idle timeout, the target refused, the peer went away). */
  onClose: (error: Error | undefined) => void
}

/** Opens UDP sessions to ip:port through the peer `viaPeerId` (net/tunnel-udp.ts implements it on libp2p). */
export interface UdpTunnelDialer {
  /**
   * Resolves once the remote peer holds a socket for ip:port; rejects (over its session bound,
   * a refused target, a dial error, the signal's reason) before any datagram was sent, so the
   * caller can pick another endpoint for the session.
   */
  dialDatagrams(viaPeerId: string, ip: string, port: number, handlers: DatagramTunnelHandlers, signal: AbortSignal): Promise<DatagramTunnel>
}

/** What one apply() did, for logs and tests. */
export interface ProxyApplyResult {
  opened: number
  closed: number
  /** Entries whose endpoints or affinity changed in place (listeners kept). */
  updated: number
  unchanged: number
  /** Listeners that could not bind; the next apply() tries them again. */
  failed: Array<{ id: string; address: string; port: number; error: Error }>
}
