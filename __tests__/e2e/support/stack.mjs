// The test-side view of the e2e stack (Docker engine + buildx + QEMU + an
// htpasswd registry) that __tests__/e2e/stack/stack.sh provisions.
//
//  ensureStack()          `stack.sh up`, then the parsed stack.env
//  engineEnv(env, engine) what one engine generation ('previous' | 'current') offers
//  makeDockerConfig()     a throwaway DOCKER_CONFIG with the engine's buildx plugin
//  docker(args, opts)     run the docker CLI against the stack (opts.engine picks the engine)
//  forwardToBridge(port)  forward a 127.0.0.1 port from the current engine's bridge address
//                         (for BuildKit in a container: docker-container driver)
//  registryFetch(path)    HTTP against the stack registry with its credentials
//  stopStackIfStarted()   `stack.sh down`, only if this process's ensureStack started it

import { execFile } from 'node:child_process'
import * as crypto from 'node:crypto'
import * as fs from 'node:fs'
import * as net from 'node:net'
import * as os from 'node:os'
import * as path from 'node:path'

import { REPO_ROOT } from '../../support/paths.mjs'
import { procStartTime, run } from '../../support/processes.mjs'
import { listen } from './service.mjs'

const STACK_SCRIPT = path.join(REPO_ROOT, '__tests__/e2e/stack/stack.sh')

/** Path of stack.env: in $BROKKR_STACK_STATE or /run/brokkr-stack. */
export function stackEnvFile() {
  return path.join(process.env.BROKKR_STACK_STATE || '/run/brokkr-stack', 'stack.env')
}

/**
 * Reads stack.env without starting anything. Throws when it does not exist.
 * @returns {Record<string,string>}
 */
export function readStackEnvSync() {
  // stack.sh writes plain KEY=value lines
  const lines = fs.readFileSync(stackEnvFile(), 'utf8').split('\n')
  return Object.fromEntries(lines.filter((l) => l.includes('=')).map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]))
}

/** @type {Promise<Stack>|null} */
let stackPromise = null
/** True when an ensureStack() of this process started the stack's processes. */
let startedHere = false
/** @type {Record<string,string>|null} */
let cachedEnv = null

/**
 * @typedef {object} Stack
 * @property {Record<string,string>} env   the parsed stack.env
 * @property {boolean} started             this `up` started the stack (BROKKR_STACK_STARTED=1)
 * @property {(dockerConfigDir?: string) => Record<string,string>} dockerEnv  env for the docker CLI
 */

/**
 * Runs `bash stack.sh up` once per process (stderr inherited so progress shows,
 * stdout captured) and returns the parsed stack.env.
 * @param {object} [o]
 * @param {boolean} [o.quiet]  capture stderr too instead of inheriting it (shown on failure)
 * @param {boolean} [o.lease]  record a lease so another run's stopStackIfStarted() leaves the stack up
 *   while this process lives (used by global setup, local and demo; stopStackIfStarted() releases it)
 * @returns {Promise<Stack>}
 */
export function ensureStack(o = {}) {
  if (o.lease) acquireStackLease()
  if (!stackPromise) {
    stackPromise = (async () => {
      const res = await run('bash', [STACK_SCRIPT, 'up'], {
        env: { ...process.env },
        stderr: o.quiet ? 'pipe' : 'inherit',
        cwd: REPO_ROOT
      })
      if (res.code !== 0) {
        throw new Error(`stack.sh up failed (exit ${res.code})\n${res.stdout}${res.stderr ?? ''}`)
      }
      let env
      try {
        env = readStackEnvSync()
      } catch (e) {
        throw new Error(`stack.sh up succeeded but ${stackEnvFile()} is unreadable: ${e.message}`)
      }
      for (const k of ['DOCKER_HOST', 'BROKKR_REGISTRY']) {
        if (!env[k]) throw new Error(`${stackEnvFile()} lacks ${k}`)
      }
      const started = env.BROKKR_STACK_STARTED === '1'
      if (started) {
        startedHere = true
        // a fresh stack: any hand-over left by an earlier owner is stale
        try {
          fs.rmSync(path.join(leaseDir(), 'handover'), { force: true })
        } catch {}
      }
      cachedEnv = env
      return { env, started, dockerEnv: (dir) => dockerEnv(dir) }
    })()
    stackPromise.catch(() => {
      stackPromise = null
    })
  }
  return stackPromise
}

/** The stack env: from ensureStack() of this process, else stack.env. */
function stackEnv() {
  if (cachedEnv) return cachedEnv
  cachedEnv = readStackEnvSync()
  return cachedEnv
}

/** The engine generations the stack runs. */
export const ENGINES = /** @type {const} */ (['previous', 'current'])

/**
 * @typedef {object} EngineEnv
 * @property {'previous'|'current'} engine
 * @property {string} DOCKER_HOST     the engine's socket (unix://...)
 * @property {string} bin             put first on PATH: docker, dockerd, containerd, ctr, runc, docker-buildx
 * @property {string} buildxPlugin    link it into a private DOCKER_CONFIG/cli-plugins (makeDockerConfig does)
 * @property {string} registry        the test registry as BuildKit of this engine reaches it with
 *                                    either driver: previous 127.0.0.1:PORT (docker driver only);
 *                                    current <bridge ip>:PORT (docker and docker-container drivers).
 *                                    Note: the action's own registry client (src/registry.ts: manifest
 *                                    step, read-backs) speaks plain http only to loopback names, so it
 *                                    gets HTTPS errors (ERR_SSL_WRONG_VERSION_NUMBER) on the bridge
 *                                    address; with the docker driver, give the action `localRegistry`.
 * @property {string} localRegistry   the test registry as the host sees it (127.0.0.1:PORT; same
 *                                    storage and credentials as `registry`)
 * @property {string} baseImage       the base image by a registry reference reachable like `registry`
 * @property {string} baseRegistry    the base registry, reachable like `registry`
 * @property {string|null} sbomGenerator  an SBOM generator image (BuildKit's protocol, SPDX 2.3), reachable like `registry`
 * @property {string} dockerVersion   e.g. 26.1.5+dfsg1 / 28.5.2+dfsg4
 * @property {string} buildxVersion   e.g. 0.13.1+ds1 / 0.29.1+ds1
 * @property {string|null} containerdVersion  current only (e.g. 2.1.9+ds1)
 * @property {string|null} bridgeIp   current only: the bridge's gateway address the forwarders listen on
 * @property {string|null} buildkitImage  moby/buildkit:buildx-stable-1 when loaded into both engines
 * @property {string|null} buildkitVersion
 */

/**
 * What one engine generation of the stack offers. engineEnv('current') reads stack.env itself.
 * Throws for 'current' when stack.env has no current generation (BROKKR_STACK_CURRENT=0).
 * @param {Record<string,string>} [env]  parsed stack.env (default: this process's)
 * @param {'previous'|'current'} [engine]  default 'previous'
 * @returns {EngineEnv}
 */
export function engineEnv(env, engine = 'previous') {
  if (!ENGINES.includes(engine)) throw new Error(`unknown engine generation ${JSON.stringify(engine)} (expected one of ${ENGINES.join(', ')})`)
  const e = env ?? stackEnv()
  const current = engine === 'current'
  if (current && !e.BROKKR_CURRENT_DOCKER_HOST) {
    throw new Error(`${stackEnvFile()} has no current engine generation (BROKKR_CURRENT_DOCKER_HOST missing): run stack.sh up without BROKKR_STACK_CURRENT=0`)
  }
  // the current generation's values are BROKKR_CURRENT_<NAME>; the previous one's BROKKR_<NAME> unless named
  const v = (name, previous = `BROKKR_${name}`) => (current ? e[`BROKKR_CURRENT_${name}`] : e[previous])
  return {
    engine,
    DOCKER_HOST: v('DOCKER_HOST', 'DOCKER_HOST'),
    bin: v('BIN', 'BROKKR_STACK_BIN'),
    buildxPlugin: v('BUILDX_PLUGIN'),
    registry: v('REGISTRY'),
    localRegistry: e.BROKKR_REGISTRY,
    baseImage: v('BASE_IMAGE'),
    baseRegistry: v('BASE_REGISTRY'),
    sbomGenerator: v('SBOM_GENERATOR') || null,
    dockerVersion: v('DOCKER_VERSION'),
    buildxVersion: v('BUILDX_VERSION'),
    containerdVersion: current ? e.BROKKR_CURRENT_CONTAINERD_VERSION : null,
    bridgeIp: current ? e.BROKKR_CURRENT_BRIDGE_IP : null,
    buildkitImage: e.BROKKR_BUILDKIT_IMAGE || null,
    buildkitVersion: e.BROKKR_BUILDKIT_VERSION || null
  }
}

/** Per-engine DOCKER_CONFIG made on first use by dockerEnv() without a dir. */
const defaultDockerConfigs = new Map()

/**
 * Environment for running the docker CLI against the stack: PATH with the
 * engine's bin dir first, HOME, DOCKER_HOST and DOCKER_CONFIG (a per-process,
 * per-engine config made with makeDockerConfig() when none is given). Nothing
 * else of the calling process is included.
 * @param {string} [dockerConfigDir]
 * @param {{engine?: 'previous'|'current'}} [o]  default engine: previous
 * @returns {Record<string,string>}
 */
export function dockerEnv(dockerConfigDir, o = {}) {
  const engine = o.engine ?? 'previous'
  const ee = engineEnv(stackEnv(), engine)
  const p = process.env.PATH ?? '/usr/local/bin:/usr/bin:/bin'
  let dir = dockerConfigDir
  if (!dir) {
    if (!defaultDockerConfigs.has(engine)) defaultDockerConfigs.set(engine, makeDockerConfig({ engine }))
    dir = defaultDockerConfigs.get(engine)
  }
  const out = {
    PATH: ee.bin ? `${ee.bin}${path.delimiter}${p}` : p,
    DOCKER_HOST: ee.DOCKER_HOST,
    DOCKER_CONFIG: dir
  }
  if (process.env.HOME) out.HOME = process.env.HOME
  return out
}

/** Every DOCKER_CONFIG dir made by this process (removed at exit). */
const madeConfigs = new Set()
process.once('exit', () => {
  for (const d of madeConfigs) {
    try {
      fs.rmSync(d, { recursive: true, force: true })
    } catch {}
  }
})

/**
 * buildkitd.toml text marking registries as plain-http and insecure.
 * @param {string[]} hosts  host:port
 * @returns {string}
 */
export function buildkitdToml(hosts) {
  return [...new Set(hosts)].map((h) => `[registry.${JSON.stringify(h)}]\n  http = true\n  insecure = true\n`).join('\n')
}

/**
 * Creates a temporary DOCKER_CONFIG dir: cli-plugins/docker-buildx symlinked to
 * the engine's buildx plugin (previous: BROKKR_BUILDX_PLUGIN, current:
 * BROKKR_CURRENT_BUILDX_PLUGIN) and a config.json of `{}` (or, with `auth: true`,
 * with the stack registry's credentials under `auths`, for 127.0.0.1:PORT and, on
 * current, for <bridge ip>:PORT too). Removed when the process exits unless `keep`
 * is set.
 *
 * `buildkitd` (current engine): writes buildx/buildkitd.default.toml marking the
 * bridge-address registries (and any extra host:port given) `http = true,
 * insecure = true`, which buildx 0.29 copies into every new builder (a
 * docker-container builder then pushes to them). Off by default: with that file
 * present buildx 0.29 refuses `--driver remote`.
 * @param {{auth?: boolean, keep?: boolean, engine?: 'previous'|'current', buildkitd?: boolean|string[]}} [o]
 * @returns {string} the directory
 */
export function makeDockerConfig(o = {}) {
  const env = stackEnv()
  const ee = engineEnv(env, o.engine ?? 'previous')
  // under the e2e run's own directory when there is one (global teardown removes it whole)
  const dir = fs.mkdtempSync(path.join(process.env.BROKKR_E2E_TMP || os.tmpdir(), 'brokkr-docker-config-'))
  fs.mkdirSync(path.join(dir, 'cli-plugins'))
  if (ee.buildxPlugin) fs.symlinkSync(ee.buildxPlugin, path.join(dir, 'cli-plugins', 'docker-buildx'))
  const config = {}
  if (o.auth) {
    const auth = { auth: Buffer.from(`${env.BROKKR_REGISTRY_USER}:${env.BROKKR_REGISTRY_PASSWORD}`).toString('base64') }
    config.auths = { [env.BROKKR_REGISTRY]: auth }
    if (ee.registry && ee.registry !== env.BROKKR_REGISTRY) config.auths[ee.registry] = { ...auth }
  }
  fs.writeFileSync(path.join(dir, 'config.json'), JSON.stringify(config, null, 2))
  if (o.buildkitd) {
    const hosts = [ee.registry, ee.baseRegistry, ...(Array.isArray(o.buildkitd) ? o.buildkitd : [])].filter(Boolean)
    fs.mkdirSync(path.join(dir, 'buildx'))
    fs.writeFileSync(path.join(dir, 'buildx', 'buildkitd.default.toml'), buildkitdToml(hosts))
  }
  if (!o.keep) madeConfigs.add(dir)
  return dir
}

/**
 * Runs the docker CLI against the stack.
 * @param {string[]} args
 * @param {object} [o]
 * @param {Record<string,string>} [o.env]   default dockerEnv(undefined, {engine})
 * @param {'previous'|'current'} [o.engine] engine for the default env (previous)
 * @param {string|Buffer} [o.input]         stdin
 * @param {boolean} [o.allowFail]           resolve instead of rejecting on a non-zero exit
 * @param {number} [o.timeoutMs]
 * @returns {Promise<{code: number, stdout: string, stderr: string}>}
 */
export function docker(args, { env, engine, input, allowFail = false, timeoutMs } = {}) {
  return new Promise((resolve, reject) => {
    const child = execFile(
      'docker',
      args,
      { env: env ?? dockerEnv(undefined, { engine }), maxBuffer: 256 * 1024 * 1024, timeout: timeoutMs },
      (error, stdout, stderr) => {
        const code = error ? (typeof error.code === 'number' ? error.code : 1) : 0
        const res = { code, stdout: String(stdout), stderr: String(stderr) }
        if (error && typeof error.code !== 'number' && !allowFail) return reject(error)
        if (code !== 0 && !allowFail) {
          const e = new Error(`docker ${args.join(' ')} exited ${code}: ${res.stderr.trim()}`)
          Object.assign(e, res)
          return reject(e)
        }
        resolve(res)
      }
    )
    if (input !== undefined) child.stdin.end(input)
    else child.stdin.end()
  })
}

/** Accept header for every manifest kind a registry may hold. */
const MANIFEST_ACCEPT = [
  'application/vnd.oci.image.index.v1+json',
  'application/vnd.docker.distribution.manifest.list.v2+json',
  'application/vnd.oci.image.manifest.v1+json',
  'application/vnd.docker.distribution.manifest.v2+json'
].join(', ')

/**
 * fetch() against http://$BROKKR_REGISTRY with the stack user's basic auth.
 * Requests to /v2/<repo>/manifests/<ref> get the manifest Accept header by default.
 * @param {string} urlPath  e.g. `/v2/colliery-io/brokkr-agent/tags/list`
 * @param {{method?: string, headers?: Record<string,string>, body?: any}} [o]
 * @returns {Promise<Response>}
 */
export async function registryFetch(urlPath, { method = 'GET', headers = {}, body } = {}) {
  const env = stackEnv()
  const h = {
    Authorization: `Basic ${Buffer.from(`${env.BROKKR_REGISTRY_USER}:${env.BROKKR_REGISTRY_PASSWORD}`).toString('base64')}`,
    ...headers
  }
  if (/\/manifests\//.test(urlPath) && !Object.keys(h).some((k) => k.toLowerCase() === 'accept')) h.Accept = MANIFEST_ACCEPT
  return fetch(`http://${env.BROKKR_REGISTRY}${urlPath.startsWith('/') ? '' : '/'}${urlPath}`, { method, headers: h, body })
}

/**
 * Reads a manifest (or index) back from the stack registry.
 * @param {string} repo  repository path inside the registry, e.g. `colliery-io/brokkr-agent`
 * @param {string} ref   tag or digest
 * @returns {Promise<{status: number, digest: string|null, mediaType: string|null, manifest: any}>}
 */
export async function registryManifest(repo, ref) {
  const res = await registryFetch(`/v2/${repo}/manifests/${ref}`)
  const text = await res.text()
  let manifest = null
  try {
    manifest = JSON.parse(text)
  } catch {}
  return {
    status: res.status,
    digest: res.headers.get('docker-content-digest'),
    mediaType: manifest?.mediaType ?? res.headers.get('content-type'),
    manifest
  }
}

/**
 * Uploads a blob to the stack registry (one monolithic upload) and returns its digest.
 * @param {string} repo
 * @param {Buffer} bytes
 * @returns {Promise<string>}
 */
export async function registryPutBlob(repo, bytes) {
  const digest = `sha256:${crypto.createHash('sha256').update(bytes).digest('hex')}`
  const started = await registryFetch(`/v2/${repo}/blobs/uploads/`, { method: 'POST' })
  const location = started.headers.get('location')
  if (started.status !== 202 || !location) throw new Error(`POST /v2/${repo}/blobs/uploads/: HTTP ${started.status}`)
  const url = new URL(location, `http://${stackEnv().BROKKR_REGISTRY}`)
  url.searchParams.set('digest', digest)
  const put = await registryFetch(url.pathname + url.search, { method: 'PUT', headers: { 'Content-Type': 'application/octet-stream' }, body: bytes })
  if (put.status !== 201) throw new Error(`PUT blob ${digest} to ${repo}: HTTP ${put.status}`)
  return digest
}

/**
 * Writes a manifest (or index) under a tag or its digest in the stack registry; returns its digest.
 * @param {string} repo
 * @param {string} ref   tag, or the digest of `bytes`
 * @param {Buffer} bytes
 * @param {string} mediaType
 * @returns {Promise<string>}
 */
export async function registryPutManifest(repo, ref, bytes, mediaType) {
  const put = await registryFetch(`/v2/${repo}/manifests/${ref}`, { method: 'PUT', headers: { 'Content-Type': mediaType }, body: bytes })
  if (put.status !== 201) throw new Error(`PUT ${repo}:${ref}: HTTP ${put.status} ${await put.text()}`)
  return /** @type {string} */ (put.headers.get('docker-content-digest'))
}

/**
 * Tags of a repository in the stack registry ([] when it does not exist).
 * @param {string} repo
 * @returns {Promise<string[]>}
 */
export async function registryTags(repo) {
  const res = await registryFetch(`/v2/${repo}/tags/list`)
  if (res.status === 404) return []
  if (!res.ok) throw new Error(`GET /v2/${repo}/tags/list: HTTP ${res.status}`)
  return (await res.json()).tags ?? []
}

// ---------------------------------------------------------------------------
// Forwarding to the current engine's bridge. BuildKit in a container (buildx's
// docker-container driver) sits on that bridge, where 127.0.0.1 is the container
// itself; services the tests start on 127.0.0.1 (fault proxies, cache doubles)
// are reached through <bridge ip>:<port> instead. stack.sh forwards the two
// registries itself (BROKKR_CURRENT_REGISTRY / BROKKR_CURRENT_BASE_REGISTRY).

/**
 * Forwards a free port of the current engine's bridge address to 127.0.0.1:`port`, in this
 * process, so BuildKit in a container reaches a service the test started.
 * @param {number} port
 * @returns {Promise<{address: string, stop: () => Promise<void>}>}  address: host:port for the builder
 */
export async function forwardToBridge(port) {
  const { bridgeIp } = engineEnv(stackEnv(), 'current')
  const server = net.createServer({ allowHalfOpen: true }, (c) => {
    const u = net.connect({ host: '127.0.0.1', port, allowHalfOpen: true })
    for (const [a, b] of [
      [c, u],
      [u, c]
    ]) {
      a.on('error', () => b.destroy())
      a.on('close', () => (b.writableEnded ? b.destroy() : b.end()))
      a.pipe(b)
    }
  })
  const listening = await listen(server, { port: 0, host: bridgeIp })
  return { address: listening.hostPort, stop: listening.close }
}

/**
 * Runs `stack.sh down` unconditionally.
 * @returns {Promise<{code: number|null, stdout: string}>}
 */
export async function stopStack() {
  const res = await run('bash', [STACK_SCRIPT, 'down'], { env: { ...process.env }, stderr: 'inherit', cwd: REPO_ROOT })
  stackPromise = null
  startedHere = false
  cachedEnv = null
  return res
}

/**
 * Runs `stack.sh down` only when an ensureStack() of this process started the
 * stack (BROKKR_STACK_STARTED=1 right after its `up`) — or when the process
 * that started it handed it over — and no other process holding a lease (see
 * ensureStack's `lease`) is still alive. If another lease holder is alive, the
 * duty is handed over to the last one to leave.
 * @returns {Promise<boolean>} whether it stopped it
 */
export async function stopStackIfStarted() {
  const { shouldStop } = releaseStackLease({ started: startedHere })
  if (!shouldStop) {
    startedHere = false
    return false
  }
  const res = await stopStack()
  if (res.code !== 0) throw new Error(`stack.sh down failed (exit ${res.code})`)
  return true
}

// ---------------------------------------------------------------------------
// Leases: several runs (a jest run, `npm run demo`) may share one stack; the
// one that started it must not stop it under another's feet.

/** Directory of lease files (one per process using the stack). */
function leaseDir() {
  return path.join(os.tmpdir(), 'brokkr-stack-leases')
}

function leaseFile(pid = process.pid) {
  return path.join(leaseDir(), `${pid}.json`)
}

/** Records that this process uses the stack. */
function acquireStackLease() {
  fs.mkdirSync(leaseDir(), { recursive: true })
  fs.writeFileSync(leaseFile(), JSON.stringify({ pid: process.pid, start: procStartTime(process.pid) }))
}

/** Other processes holding a live lease. */
function otherLiveLeases() {
  let names = []
  try {
    names = fs.readdirSync(leaseDir())
  } catch {
    return []
  }
  const live = []
  for (const n of names) {
    const m = /^(\d+)\.json$/.exec(n)
    if (!m || Number(m[1]) === process.pid) continue
    let rec = null
    try {
      rec = JSON.parse(fs.readFileSync(path.join(leaseDir(), n), 'utf8'))
    } catch {}
    if (rec && rec.start !== null && procStartTime(rec.pid) === rec.start) live.push(rec.pid)
    else {
      try {
        fs.rmSync(path.join(leaseDir(), n), { force: true })
      } catch {}
    }
  }
  return live
}

/**
 * Drops this process's lease and tells whether it must stop the stack now.
 * @param {{started: boolean}} o  whether this process started the stack
 * @returns {{shouldStop: boolean, others: number[]}}
 */
export function releaseStackLease({ started }) {
  try {
    fs.rmSync(leaseFile(), { force: true })
  } catch {}
  const handover = path.join(leaseDir(), 'handover')
  const duty = started || fs.existsSync(handover)
  const others = otherLiveLeases()
  if (!duty) return { shouldStop: false, others }
  if (others.length > 0) {
    fs.mkdirSync(leaseDir(), { recursive: true })
    fs.writeFileSync(handover, String(process.pid))
    return { shouldStop: false, others }
  }
  try {
    fs.rmSync(handover, { force: true })
  } catch {}
  return { shouldStop: true, others }
}
