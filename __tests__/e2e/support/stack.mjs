// The test-side view of the e2e stack (Docker engine + buildx + QEMU + an
// htpasswd registry) that __tests__/e2e/stack/stack.sh provisions.
//
//  ensureStack()          `stack.sh up`, then the parsed stack.env
//  makeDockerConfig()     a throwaway DOCKER_CONFIG with the stack's buildx plugin
//  docker(args, opts)     run the docker CLI against the stack
//  registryFetch(path)    HTTP against the stack registry with its credentials
//  stopStackIfStarted()   `stack.sh down`, only if this process's ensureStack started it
//  trackProcess(pid)      record a process the tests started, for global teardown

import { execFile, spawn } from 'node:child_process'
import * as fs from 'node:fs'
import * as os from 'node:os'
import * as path from 'node:path'
import { fileURLToPath } from 'node:url'

export const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..')
export const STACK_SCRIPT = path.join(REPO_ROOT, '__tests__/e2e/stack/stack.sh')

/** Directory holding stack.env: $BROKKR_STACK_STATE or /run/brokkr-stack. */
export function stackStateDir () {
  return process.env.BROKKR_STACK_STATE || '/run/brokkr-stack'
}

/** Path of stack.env. */
export function stackEnvFile () {
  return path.join(stackStateDir(), 'stack.env')
}

/**
 * Parses a KEY=VALUE env file (also `export KEY=...`, '...' and "..." quoting, # comments).
 * @param {string} text
 * @returns {Record<string,string>}
 */
export function parseEnvFile (text) {
  const env = {}
  for (let line of text.split(/\r?\n/)) {
    line = line.trim()
    if (!line || line.startsWith('#')) continue
    if (line.startsWith('export ')) line = line.slice(7).trim()
    const eq = line.indexOf('=')
    if (eq <= 0) continue
    const key = line.slice(0, eq).trim()
    let v = line.slice(eq + 1)
    if (v.length >= 2 && v.startsWith("'") && v.endsWith("'")) {
      v = v.slice(1, -1).replace(/'\\''/g, "'")
    } else if (v.length >= 2 && v.startsWith('"') && v.endsWith('"')) {
      v = v.slice(1, -1).replace(/\\(["\\$`])/g, '$1')
    } else if (v.startsWith("$'") && v.endsWith("'")) {
      v = v.slice(2, -1).replace(/\\n/g, '\n').replace(/\\t/g, '\t').replace(/\\'/g, "'").replace(/\\\\/g, '\\')
    } else {
      v = v.replace(/\s+#.*$/, '').trim()
    }
    env[key] = v
  }
  return env
}

/**
 * Reads stack.env without starting anything. Throws when it does not exist.
 * @returns {Record<string,string>}
 */
export function readStackEnvSync () {
  return parseEnvFile(fs.readFileSync(stackEnvFile(), 'utf8'))
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
 * @property {string} output               what `stack.sh up` printed on stdout
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
export function ensureStack (o = {}) {
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
        try { fs.rmSync(path.join(leaseDir(), 'handover'), { force: true }) } catch {}
      }
      cachedEnv = env
      return { env, started, output: res.stdout, dockerEnv: (dir) => dockerEnv(dir) }
    })()
    stackPromise.catch(() => { stackPromise = null })
  }
  return stackPromise
}

/** The stack env: from ensureStack() of this process, else stack.env. */
function stackEnv () {
  if (cachedEnv) return cachedEnv
  cachedEnv = readStackEnvSync()
  return cachedEnv
}

/** @type {string|null} */
let defaultDockerConfig = null

/**
 * Environment for running the docker CLI against the stack: PATH with
 * BROKKR_STACK_BIN first, HOME, DOCKER_HOST and DOCKER_CONFIG (a per-process
 * config made with makeDockerConfig() when none is given). Nothing else of the
 * calling process is included.
 * @param {string} [dockerConfigDir]
 * @returns {Record<string,string>}
 */
export function dockerEnv (dockerConfigDir) {
  const env = stackEnv()
  const p = process.env.PATH ?? '/usr/local/bin:/usr/bin:/bin'
  const out = {
    PATH: env.BROKKR_STACK_BIN ? `${env.BROKKR_STACK_BIN}${path.delimiter}${p}` : p,
    DOCKER_HOST: env.DOCKER_HOST,
    DOCKER_CONFIG: dockerConfigDir ?? (defaultDockerConfig ??= makeDockerConfig())
  }
  if (process.env.HOME) out.HOME = process.env.HOME
  return out
}

/** Every DOCKER_CONFIG dir made by this process (removed at exit). */
const madeConfigs = new Set()
process.once('exit', () => {
  for (const d of madeConfigs) { try { fs.rmSync(d, { recursive: true, force: true }) } catch {} }
})

/**
 * Creates a temporary DOCKER_CONFIG dir: cli-plugins/docker-buildx symlinked to
 * BROKKR_BUILDX_PLUGIN and a config.json of `{}` (or, with `auth: true`, with
 * the stack registry's credentials under `auths`). Removed when the process exits
 * unless `keep` is set.
 * @param {{auth?: boolean, keep?: boolean}} [o]
 * @returns {string} the directory
 */
export function makeDockerConfig (o = {}) {
  const env = stackEnv()
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'brokkr-docker-config-'))
  fs.mkdirSync(path.join(dir, 'cli-plugins'))
  if (env.BROKKR_BUILDX_PLUGIN) fs.symlinkSync(env.BROKKR_BUILDX_PLUGIN, path.join(dir, 'cli-plugins', 'docker-buildx'))
  const config = {}
  if (o.auth) {
    config.auths = {
      [env.BROKKR_REGISTRY]: { auth: Buffer.from(`${env.BROKKR_REGISTRY_USER}:${env.BROKKR_REGISTRY_PASSWORD}`).toString('base64') }
    }
  }
  fs.writeFileSync(path.join(dir, 'config.json'), JSON.stringify(config, null, 2))
  if (!o.keep) madeConfigs.add(dir)
  return dir
}

/**
 * Runs a command; never throws for a non-zero exit.
 * @returns {Promise<{code: number|null, stdout: string, stderr: string|undefined}>}
 */
function run (cmd, args, { env, input, stderr = 'pipe', cwd, timeoutMs } = {}) {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { env, cwd, stdio: [input === undefined ? 'ignore' : 'pipe', 'pipe', stderr] })
    const out = []
    const err = []
    let timer = null
    if (timeoutMs) timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs)
    child.stdout.on('data', (b) => out.push(b))
    child.stderr?.on('data', (b) => err.push(b))
    child.on('error', (e) => { if (timer) clearTimeout(timer); reject(e) })
    child.on('close', (code) => {
      if (timer) clearTimeout(timer)
      resolve({
        code,
        stdout: Buffer.concat(out).toString('utf8'),
        stderr: stderr === 'pipe' ? Buffer.concat(err).toString('utf8') : undefined
      })
    })
    if (input !== undefined) child.stdin.end(input)
  })
}

/**
 * Runs the docker CLI against the stack.
 * @param {string[]} args
 * @param {object} [o]
 * @param {Record<string,string>} [o.env]   default dockerEnv()
 * @param {string|Buffer} [o.input]         stdin
 * @param {boolean} [o.allowFail]           resolve instead of rejecting on a non-zero exit
 * @param {number} [o.timeoutMs]
 * @returns {Promise<{code: number, stdout: string, stderr: string}>}
 */
export function docker (args, { env, input, allowFail = false, timeoutMs } = {}) {
  return new Promise((resolve, reject) => {
    const child = execFile('docker', args, { env: env ?? dockerEnv(), maxBuffer: 256 * 1024 * 1024, timeout: timeoutMs }, (error, stdout, stderr) => {
      const code = error ? (typeof error.code === 'number' ? error.code : 1) : 0
      const res = { code, stdout: String(stdout), stderr: String(stderr) }
      if (error && typeof error.code !== 'number' && !allowFail) return reject(error)
      if (code !== 0 && !allowFail) {
        const e = new Error(`docker ${args.join(' ')} exited ${code}: ${res.stderr.trim()}`)
        Object.assign(e, res)
        return reject(e)
      }
      resolve(res)
    })
    if (input !== undefined) child.stdin.end(input)
    else child.stdin.end()
  })
}

/** Accept header for every manifest kind a registry may hold. */
export const MANIFEST_ACCEPT = [
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
export async function registryFetch (urlPath, { method = 'GET', headers = {}, body } = {}) {
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
export async function registryManifest (repo, ref) {
  const res = await registryFetch(`/v2/${repo}/manifests/${ref}`)
  const text = await res.text()
  let manifest = null
  try { manifest = JSON.parse(text) } catch {}
  return {
    status: res.status,
    digest: res.headers.get('docker-content-digest'),
    mediaType: manifest?.mediaType ?? res.headers.get('content-type'),
    manifest
  }
}

/**
 * Tags of a repository in the stack registry ([] when it does not exist).
 * @param {string} repo
 * @returns {Promise<string[]>}
 */
export async function registryTags (repo) {
  const res = await registryFetch(`/v2/${repo}/tags/list`)
  if (res.status === 404) return []
  if (!res.ok) throw new Error(`GET /v2/${repo}/tags/list: HTTP ${res.status}`)
  return (await res.json()).tags ?? []
}

/**
 * Runs `stack.sh down` unconditionally.
 * @returns {Promise<{code: number|null, stdout: string}>}
 */
export async function stopStack () {
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
export async function stopStackIfStarted () {
  const { shouldStop } = releaseStackLease({ started: startedHere })
  if (!shouldStop) { startedHere = false; return false }
  const res = await stopStack()
  if (res.code !== 0) throw new Error(`stack.sh down failed (exit ${res.code})`)
  return true
}

// ---------------------------------------------------------------------------
// Leases: several runs (a jest run, `npm run demo`) may share one stack; the
// one that started it must not stop it under another's feet.

/** Directory of lease files (one per process using the stack). */
export function leaseDir () {
  return path.join(os.tmpdir(), 'brokkr-stack-leases')
}

function leaseFile (pid = process.pid) {
  return path.join(leaseDir(), `${pid}.json`)
}

/** Records that this process uses the stack. */
export function acquireStackLease () {
  fs.mkdirSync(leaseDir(), { recursive: true })
  fs.writeFileSync(leaseFile(), JSON.stringify({ pid: process.pid, start: procStartTime(process.pid) }))
}

/** Other processes holding a live lease. */
function otherLiveLeases () {
  let names = []
  try { names = fs.readdirSync(leaseDir()) } catch { return [] }
  const live = []
  for (const n of names) {
    const m = /^(\d+)\.json$/.exec(n)
    if (!m || Number(m[1]) === process.pid) continue
    let rec = null
    try { rec = JSON.parse(fs.readFileSync(path.join(leaseDir(), n), 'utf8')) } catch {}
    if (rec && rec.start !== null && procStartTime(rec.pid) === rec.start) live.push(rec.pid)
    else { try { fs.rmSync(path.join(leaseDir(), n), { force: true }) } catch {} }
  }
  return live
}

/**
 * Drops this process's lease and tells whether it must stop the stack now.
 * @param {{started: boolean}} o  whether this process started the stack
 * @returns {{shouldStop: boolean, others: number[]}}
 */
export function releaseStackLease ({ started }) {
  try { fs.rmSync(leaseFile(), { force: true }) } catch {}
  const handover = path.join(leaseDir(), 'handover')
  const duty = started || fs.existsSync(handover)
  const others = otherLiveLeases()
  if (!duty) return { shouldStop: false, others }
  if (others.length > 0) {
    fs.mkdirSync(leaseDir(), { recursive: true })
    fs.writeFileSync(handover, String(process.pid))
    return { shouldStop: false, others }
  }
  try { fs.rmSync(handover, { force: true }) } catch {}
  return { shouldStop: true, others }
}

/** Whether an ensureStack() of this process started the stack. */
export function stackStartedHere () {
  return startedHere
}

// ---------------------------------------------------------------------------
// Process tracking for global teardown. Global setup sets BROKKR_E2E_PIDFILE;
// processes started by tests (the harness's action steps, cache doubles or
// proxies run as child processes) are appended, and removed when they end.
// Teardown kills what is left, checking the start time so a recycled pid is
// never hit.

/** Start time (clock ticks since boot) of a pid from /proc, or null. */
export function procStartTime (pid) {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8')
    const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
    return rest[19] ?? null // field 22 overall
  } catch {
    return null
  }
}

/**
 * Records a process the tests started, so global teardown can kill it if it is
 * still running. No-op without BROKKR_E2E_PIDFILE.
 * @param {number} pid
 * @param {string} label
 * @param {{group?: boolean}} [o]  group: kill its process group (it was spawned detached)
 */
export function trackProcess (pid, label, o = {}) {
  const file = process.env.BROKKR_E2E_PIDFILE
  if (!file || !pid) return
  try {
    fs.appendFileSync(file, JSON.stringify({ op: 'add', pid, label, group: !!o.group, start: procStartTime(pid) }) + '\n')
  } catch {}
}

/** Marks a tracked process as ended. */
export function untrackProcess (pid) {
  const file = process.env.BROKKR_E2E_PIDFILE
  if (!file || !pid) return
  try { fs.appendFileSync(file, JSON.stringify({ op: 'remove', pid }) + '\n') } catch {}
}

/**
 * Kills every tracked process still alive (SIGTERM, then SIGKILL after a grace period).
 * @param {string} file
 * @returns {Promise<{pid:number,label:string}[]>} what it killed
 */
export async function killTracked (file) {
  let text = ''
  try { text = fs.readFileSync(file, 'utf8') } catch { return [] }
  const live = new Map()
  for (const line of text.split('\n')) {
    if (!line.trim()) continue
    let rec
    try { rec = JSON.parse(line) } catch { continue }
    if (rec.op === 'add') live.set(rec.pid, rec)
    else if (rec.op === 'remove') live.delete(rec.pid)
  }
  const victims = [...live.values()].filter((r) => r.start !== null && procStartTime(r.pid) === r.start)
  const signal = (r, sig) => {
    try { process.kill(r.group ? -r.pid : r.pid, sig) } catch { try { process.kill(r.pid, sig) } catch {} }
  }
  for (const r of victims) signal(r, 'SIGTERM')
  if (victims.length) {
    await new Promise((resolve) => setTimeout(resolve, 2000))
    for (const r of victims) if (procStartTime(r.pid) === r.start) signal(r, 'SIGKILL')
  }
  return victims.map((r) => ({ pid: r.pid, label: r.label }))
}
