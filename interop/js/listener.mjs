// A js-libp2p listener for p2pnet's interop tests (interop/js_test.go).
//
//   node listener.mjs SECURITY[,SECURITY...]
//
// SECURITY is "noise" or "tls"; the list is the listener's only security
// protocols, in order. It listens on 127.0.0.1 TCP with yamux, prints
// its address (with /p2p/) as the first line on stdout, and serves:
//
//   /ipfs/ping/1.0.0          ping
//   /interop/echo/1.0.0       echoes everything until the dialer closes
//   /interop/ping-back/1.0.0  pings the dialer over the same connection
//                             and answers "ok\n" or "error: ...\n"
//
// It exits when its standard input closes, or on SIGTERM or SIGINT.
// It runs on Node.js 20 (see node20.mjs) and later.

import './node20.mjs' // first: it patches what the others use
import { noise } from '@chainsafe/libp2p-noise'
import { yamux } from '@chainsafe/libp2p-yamux'
import { ping } from '@libp2p/ping'
import { tcp } from '@libp2p/tcp'
import { tls } from '@libp2p/tls'
import { createLibp2p } from 'libp2p'

const encrypters = { noise, tls }
const names = (process.argv[2] ?? '').split(',').filter(s => s !== '')
if (names.length === 0 || names.some(n => encrypters[n] === undefined)) {
  console.error('usage: node listener.mjs noise|tls[,noise|tls]')
  process.exit(2)
}

const node = await createLibp2p({
  addresses: { listen: ['/ip4/127.0.0.1/tcp/0'] },
  transports: [tcp()],
  connectionEncrypters: names.map(n => encrypters[n]()),
  streamMuxers: [yamux()],
  services: { ping: ping() }
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
})

await node.handle('/interop/ping-back/1.0.0', async (stream, connection) => {
  let answer = 'ok\n'
  try {
    await node.services.ping.ping(connection.remotePeer, { signal: AbortSignal.timeout(10000) })
  } catch (err) {
    answer = `error: ${err.message}\n`
  }
  try {
    stream.send(new TextEncoder().encode(answer))
    await stream.close()
  } catch (err) {
    stream.abort(err)
  }
})

const addr = node.getMultiaddrs().find(a => a.toString().startsWith('/ip4/127.0.0.1/tcp/'))
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
