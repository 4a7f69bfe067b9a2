// A js-libp2p node in a browser page, for p2pnet's browser test
// (interop/browser_test.go). The test serves this page bundled by esbuild
// and opens it in headless Chromium as
//
//   /?addr=MULTIADDR/p2p/ID&echo=PROTOCOL&size=BYTES&timeout=MS
//
// The node dials addr with whichever of its transports matches
// (WebSocket: /ws, /wss, /tls/ws; WebTransport: /quic-v1/webtransport
// with /certhash), waits for identify, pings the peer, and echoes size
// random bytes over the echo protocol (it writes them, closes its write
// side, reads the answer to its end) comparing SHA-256 checksums. It
// puts what happened in window.p2pnetResult, which the test polls:
//
//   { ok: true, remotePeer, remoteAddr, encryption, multiplexer, rttMs,
//     identify: { agentVersion, protocolVersion, protocols, listenAddrs, observedAddr },
//     echo: { bytes, sent, received, match } }    (checksums in hex)
//   { ok: false, error }
//
// Everything is bounded by timeout (30 s by default).

import { noise } from '@chainsafe/libp2p-noise'
import { yamux } from '@chainsafe/libp2p-yamux'
import { identify } from '@libp2p/identify'
import { ping } from '@libp2p/ping'
import { webSockets } from '@libp2p/websockets'
import { webTransport } from '@libp2p/webtransport'
import { multiaddr } from '@multiformats/multiaddr'
import { createLibp2p } from 'libp2p'

const params = new URLSearchParams(window.location.search)

function log (line) {
  document.getElementById('log').textContent += line + '\n'
  console.log(line)
}

async function sha256hex (bytes) {
  const digest = new Uint8Array(await crypto.subtle.digest('SHA-256', bytes))
  return Array.from(digest, b => b.toString(16).padStart(2, '0')).join('')
}

// echo writes size random bytes on a fresh stream of protocol, closes the
// write side, reads the echo to its end, and compares checksums.
async function echo (node, peer, protocol, size, signal) {
  const data = new Uint8Array(size)
  for (let off = 0; off < size; off += 65536) {
    crypto.getRandomValues(data.subarray(off, Math.min(off + 65536, size)))
  }
  const stream = await node.dialProtocol(peer, protocol, { signal })
  const received = []
  let n = 0
  const reading = (async () => {
    for await (const chunk of stream) {
      const bytes = chunk instanceof Uint8Array ? chunk : chunk.subarray()
      received.push(bytes.slice())
      n += bytes.length
    }
  })()
  for (let off = 0; off < size; off += 16384) {
    if (!stream.send(data.subarray(off, Math.min(off + 16384, size)))) {
      await stream.onDrain({ signal })
    }
  }
  await stream.close({ signal }) // our write side; the peer then echoes
  await reading
  const back = new Uint8Array(n)
  let off = 0
  for (const b of received) {
    back.set(b, off)
    off += b.length
  }
  const sent = await sha256hex(data)
  const got = await sha256hex(back)
  return { bytes: n, sent, received: got, match: n === size && sent === got }
}

async function run () {
  const addr = multiaddr(params.get('addr'))
  const protocol = params.get('echo') ?? '/p2pnet/echo/1.0.0'
  const size = Number(params.get('size') ?? 1048576)
  const signal = AbortSignal.timeout(Number(params.get('timeout') ?? 30000))

  const node = await createLibp2p({
    transports: [webSockets(), webTransport()],
    connectionEncrypters: [noise()],
    streamMuxers: [yamux()],
    // The browser default refuses loopback and plain /ws addresses: the
    // test's node is both.
    connectionGater: { denyDialMultiaddr: async () => false },
    services: { identify: identify(), ping: ping() }
  })
  try {
    const identified = new Promise(resolve => {
      node.addEventListener('peer:identify', evt => resolve(evt.detail))
    })
    log(`dialing ${addr}`)
    const conn = await node.dial(addr, { signal })
    log(`connected to ${conn.remotePeer} over ${conn.remoteAddr}`)
    const id = await Promise.race([
      identified,
      new Promise((resolve, reject) => signal.addEventListener('abort', () => reject(new Error('identify did not finish'))))
    ])
    log(`identified: ${id.agentVersion}`)
    const rttMs = await node.services.ping.ping(conn.remotePeer, { signal })
    log(`ping: ${rttMs} ms`)
    const echoed = await echo(node, conn.remotePeer, protocol, size, signal)
    log(`echo: ${echoed.bytes} bytes, match ${echoed.match}`)
    return {
      ok: true,
      remotePeer: conn.remotePeer.toString(),
      remoteAddr: conn.remoteAddr.toString(),
      encryption: conn.encryption ?? '',
      multiplexer: conn.multiplexer ?? '',
      rttMs,
      identify: {
        peer: id.peerId.toString(),
        agentVersion: id.agentVersion ?? '',
        protocolVersion: id.protocolVersion ?? '',
        protocols: id.protocols,
        listenAddrs: id.listenAddrs.map(a => a.toString()),
        observedAddr: id.observedAddr?.toString() ?? ''
      },
      echo: echoed
    }
  } finally {
    await node.stop()
  }
}

run().then(
  result => { window.p2pnetResult = result },
  err => {
    log(`error: ${err.stack ?? err}`)
    window.p2pnetResult = { ok: false, error: String(err.stack ?? err) }
  }
)
