// Shared plumbing for the HTTP test doubles (cache-double.mjs, cache-v2-double.mjs, fault-proxy.mjs):
//   - listen(): bind an http.Server and keep hold of its sockets, so close() is immediate even
//     while clients hold keep-alive connections open;
//   - runServiceCli(): the common command line of a double run as its own process
//     (--port/--host/--state-file/--quiet, one JSON line on stdout, state file, signal handling);
//   - readBody(): a request body, bounded; makePrng(): the seedable PRNG of the fault knobs.
//
// Node 20 built-ins only.

import fsp from 'node:fs/promises'
import path from 'node:path'
import { fileURLToPath } from 'node:url'

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
 * True when the module whose `import.meta.url` is given is the script node was started with.
 * @param {string} moduleUrl
 */
function isMain(moduleUrl) {
  return Boolean(process.argv[1]) && path.resolve(process.argv[1]) === fileURLToPath(moduleUrl)
}

/**
 * How one command-line option is read: `string`, `number` (via Number()) or `flag` (no value).
 * @typedef {'string' | 'number' | 'flag'} OptionType
 */

/** Options every double understands, by key. @type {Record<string, OptionType>} */
const COMMON_OPTIONS = { port: 'number', host: 'string', stateFile: 'string', quiet: 'flag', help: 'flag' }

/**
 * Parse `--name value` / `--name=value` arguments (a key `stateFile` is spelled `--state-file`;
 * `-h` is `--help`); anything unknown throws.
 * @param {string[]} argv
 * @param {Record<string, OptionType>} options  by key
 * @returns {Record<string, any>}
 */
function parseArgs(argv, options) {
  /** @type {Map<string, { key: string, type: OptionType }>} */
  const byName = new Map([['-h', { key: 'help', type: 'flag' }]])
  for (const [key, type] of Object.entries(options)) {
    byName.set(`--${key.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)}`, { key, type })
  }
  /** @type {Record<string, any>} */
  const out = {}
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]
    const eq = arg.indexOf('=')
    const split = eq > 0
    const spec = byName.get(split ? arg.slice(0, eq) : arg)
    if (!spec) throw new Error(`unknown argument ${arg}`)
    if (spec.type === 'flag') {
      out[spec.key] = true
      continue
    }
    const value = split ? arg.slice(eq + 1) : argv[++i]
    out[spec.key] = spec.type === 'number' ? Number(value) : value
  }
  return out
}

/**
 * @typedef {object} ServiceCli
 * @property {string} usage  the arguments part of the usage line printed for --help
 *   (`usage: <script file> ` goes before it)
 * @property {Record<string, OptionType>} [options]  options beyond the common ones, by key
 * @property {string[]} [required]  keys without which the usage is printed and the exit code is 2
 * @property {(args: Record<string, any>, log: ((entry: unknown) => void) | undefined) =>
 *   Promise<{ state: object, close: () => Promise<void> }>} start
 *   start the service; `args.port`/`args.host` default to 0/127.0.0.1, `log` writes JSON lines to
 *   stderr (undefined under --quiet); `state` is the JSON line to announce
 */

/**
 * When the module `moduleUrl` is the script node runs (otherwise do nothing), run it as a
 * service: parse process.argv, start it, print its state as one JSON line on stdout (and to
 * --state-file, atomically), and on SIGTERM/SIGINT close it, remove the state file and exit 0.
 * Any failure is reported as `<script name>: stack` on stderr with exit code 1.
 * @param {string} moduleUrl  the caller's `import.meta.url`
 * @param {ServiceCli} cli
 * @returns {Promise<void>}
 */
export async function runServiceCli(moduleUrl, cli) {
  if (!isMain(moduleUrl)) return
  const file = path.basename(fileURLToPath(moduleUrl))
  try {
    await serve(file, cli)
  } catch (err) {
    process.stderr.write(`${path.basename(file, path.extname(file))}: ${/** @type {any} */ (err)?.stack ?? err}\n`)
    process.exit(1)
  }
}

/**
 * @param {string} file
 * @param {ServiceCli} cli
 */
async function serve(file, { usage, options = {}, required = [], start }) {
  const args = parseArgs(process.argv.slice(2), { ...COMMON_OPTIONS, ...options })
  if (args.help || required.some((key) => !args[key])) {
    process.stdout.write(`usage: ${file} ${usage}\n`)
    process.exitCode = args.help ? 0 : 2
    return
  }
  args.port ??= 0
  args.host ??= '127.0.0.1'
  const log = args.quiet ? undefined : (/** @type {unknown} */ entry) => process.stderr.write(`${JSON.stringify(entry)}\n`)
  const service = await start(args, log)

  const line = JSON.stringify(service.state)
  if (args.stateFile) {
    const tmp = `${args.stateFile}.tmp-${process.pid}`
    await fsp.writeFile(tmp, `${line}\n`)
    await fsp.rename(tmp, args.stateFile)
  }
  process.stdout.write(`${line}\n`)

  let stopping = false
  const stop = async () => {
    if (stopping) return
    stopping = true
    await service.close()
    if (args.stateFile) await fsp.rm(args.stateFile, { force: true })
    process.exit(0)
  }
  process.on('SIGTERM', stop)
  process.on('SIGINT', stop)
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
