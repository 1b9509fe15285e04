// Shared plumbing for the HTTP test doubles (cache-double.mjs, cache-v2-double.mjs, fault-proxy.mjs):
//   - listen(): bind an http.Server and keep hold of its sockets, so close() is immediate even
//     while clients hold keep-alive connections open;
//   - readBody(): a request body, bounded; makePrng(): the seedable PRNG of the fault knobs.
//
// Node 20 built-ins only.

/**
 * @typedef {object} Listening
 * @property {number} port      the bound port (the real one when 0 was asked for)
 * @property {string} address   the bound address as the server reports it
 * @property {string} hostPort  `address:port`, IPv6 addresses in brackets
 * @property {string} origin    `http://hostPort`, no trailing slash
 * @property {() => Promise<void>} close  stop listening and destroy every open socket
 */

/**
 * Start `server` listening on host:port and track its connections.
 * Rejects if the bind fails (e.g. EADDRINUSE).
 * @param {import('node:http').Server} server
 * @param {{ port: number, host: string }} where
 * @returns {Promise<Listening>}
 */
export async function listen(server, { port, host }) {
  /** @type {Set<import('node:net').Socket>} */
  const sockets = new Set()
  server.on('connection', (socket) => {
    sockets.add(socket)
    socket.on('close', () => sockets.delete(socket))
  })

  await new Promise((resolve, reject) => {
    server.once('error', reject)
    server.listen(port, host, () => {
      server.off('error', reject)
      resolve(undefined)
    })
  })

  const addr = /** @type {import('node:net').AddressInfo} */ (server.address())
  const hostPort = `${addr.address.includes(':') ? `[${addr.address}]` : addr.address}:${addr.port}`
  return {
    port: addr.port,
    address: addr.address,
    hostPort,
    origin: `http://${hostPort}`,
    close: () =>
      new Promise((resolve) => {
        server.close(() => resolve())
        for (const socket of sockets) socket.destroy()
      })
  }
}

/**
 * The whole request body, refused (status 413) past `limit` bytes.
 * @param {import('node:http').IncomingMessage} req
 * @returns {Promise<Buffer>}
 */
export async function readBody(req, limit = 1024 * 1024) {
  const chunks = []
  let size = 0
  for await (const c of req) {
    size += c.length
    if (size > limit) throw Object.assign(new Error('request body too large'), { status: 413 })
    chunks.push(c)
  }
  return Buffer.concat(chunks)
}

/** mulberry32: tiny, fast, seedable PRNG returning floats in [0,1). */
export function makePrng(seed) {
  let a = Number(seed) >>> 0 || 0x9e3779b9
  return () => {
    a = (a + 0x6d2b79f5) >>> 0
    let t = a
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}
