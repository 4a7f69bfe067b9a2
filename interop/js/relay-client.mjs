// A js-libp2p node reachable only through a circuit relay v2, for
// p2pnet's interop tests (interop/relay_test.go).
//
//   node relay-client.mjs RELAY
//
// RELAY is the relay's address with its /p2p/ID. The node dials the
// relay over loopback TCP (Noise, yamux), reserves a slot on it by
// listening on RELAY/p2p-circuit, and prints its relayed address
// (RELAY/p2p-circuit/p2p/SELF) as the first line on stdout once the
// reservation holds. It has no address of its own: it is reached only
// through the relay. It serves, also over limited (relayed) connections:
//
//   /ipfs/ping/1.0.0          ping
//   /interop/echo/1.0.0       echoes everything until the dialer closes
//
// It exits when its standard input closes, or on SIGTERM or SIGINT.
// It runs on Node.js 20 (see node20.mjs) and later.

import './node20.mjs' // first: it patches what the others use
import { noise } from '@chainsafe/libp2p-noise'
import { yamux } from '@chainsafe/libp2p-yamux'
import { circuitRelayTransport } from '@libp2p/circuit-relay-v2'
import { identify } from '@libp2p/identify'
import { ping } from '@libp2p/ping'
import { tcp } from '@libp2p/tcp'
import { createLibp2p } from 'libp2p'

if (process.argv.length !== 3) {
  console.error('usage: node relay-client.mjs /ip4/…/tcp/…/p2p/RELAY')
  process.exit(2)
}
const relay = process.argv[2]
const relayID = relay.match(/\/p2p\/([^/]+)$/)?.[1]
if (relayID === undefined) {
  console.error(`relay address ${relay} does not end with /p2p/ID`)
  process.exit(2)
}

const node = await createLibp2p({
  // Only the relayed address: listening on it makes the reservation,
  // and start() returns once the relay has granted it.
  addresses: { listen: [`${relay}/p2p-circuit`] },
  transports: [tcp(), circuitRelayTransport()],
  connectionEncrypters: [noise()],
  streamMuxers: [yamux()],
  // The circuit transport needs identify (for relay discovery).
  services: { identify: identify(), ping: ping() }
})

await node.handle('/interop/echo/1.0.0', async (stream) => {
  try {
    for await (const buf of stream) {
      if (!stream.send(buf)) {
        await stream.onDrain()
      }
    }
    await stream.close()
  } catch (err) {
    stream.abort(err)
  }
}, { runOnLimitedConnection: true })

// relayedAddr returns our address through the relay, once we have one.
function relayedAddr () {
  return node.getMultiaddrs().find(a => {
    const s = a.toString()
    return s.includes(`/p2p/${relayID}/p2p-circuit/p2p/`)
  })
}

let addr = relayedAddr()
while (addr === undefined) {
  await new Promise(resolve => node.addEventListener('self:peer:update', resolve, { once: true }))
  addr = relayedAddr()
}
process.stdout.write(`${addr.toString()}\n`)

let stopping = false
async function stop () {
  if (stopping) return
  stopping = true
  await node.stop()
  process.exit(0)
}
process.on('SIGTERM', stop)
process.on('SIGINT', stop)
process.stdin.on('end', stop)
process.stdin.on('close', stop)
process.stdin.resume()
