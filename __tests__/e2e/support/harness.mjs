// Runs the bundled action (dist/index.js, then dist/post/index.js) exactly as
// the GitHub Actions runner does for a `uses:` step of a `node20` action:
//
//  * every input of action.yml becomes INPUT_<NAME> (upper case, spaces to `_`,
//    hyphens kept), from the step's `with:` override or else the evaluated default;
//  * the runner's environment (GITHUB_*, RUNNER_*, CI, the cache service
//    variables) is built from a simulated workflow context, starting from a clean
//    environment so nothing of the calling process leaks in;
//  * file commands (GITHUB_OUTPUT, GITHUB_STATE, GITHUB_ENV, GITHUB_PATH,
//    GITHUB_STEP_SUMMARY) use fresh files per step and are parsed like the
//    runner does (`name=value` and `name<<DELIMITER` heredocs);
//  * workflow commands on stdout/stderr are processed (`::add-mask::`,
//    `::error::`/`::warning::`/`::notice::`, `::group::`/`::endgroup::`,
//    `::debug::`, `::stop-commands::`) and the printed log is masked from the
//    moment a mask is registered, as the runner's log is;
//  * the post step always runs (post-if defaults to always()), with STATE_<name>
//    for each state main saved, and with main's GITHUB_ENV / GITHUB_PATH applied.
//
// Plain ESM, Node 20 built-ins plus `yaml`.

import { spawn, execFileSync } from 'node:child_process'
import { randomBytes, randomInt } from 'node:crypto'
import * as fs from 'node:fs'
import * as os from 'node:os'
import * as path from 'node:path'
import YAML from 'yaml'

import { REPO_ROOT } from '../../support/paths.mjs'
import { stopProcesses, trackProcess } from '../../support/processes.mjs'
import { engineEnv, makeDockerConfig, readStackEnvSync } from './stack.mjs'

/** Default time a single step may run before it is killed (the runner's default job timeout is 6 h; tests want less). */
const DEFAULT_STEP_TIMEOUT_MS = 30 * 60 * 1000

/**
 * @typedef {object} StepResult
 * @property {number|null} code        exit code of the node process (null when killed by a signal)
 * @property {string|null} signal      signal that killed it, if any
 * @property {boolean} timedOut        true when the harness killed it after `timeoutMs`
 * @property {boolean} cancelled       true when `opts.signal` aborted it
 * @property {'success'|'failure'} outcome  what the runner would record (exit 0 and valid file commands)
 * @property {string} stdout           raw stdout (unmasked, workflow commands included)
 * @property {string} stderr           raw stderr
 * @property {string} log              the runner-style log: masked, workflow commands rendered
 * @property {number} durationMs
 * @property {Record<string,string>} outputs  GITHUB_OUTPUT of this step
 * @property {Record<string,string>} state    GITHUB_STATE of this step
 * @property {Record<string,string>} env      GITHUB_ENV of this step
 * @property {string[]} path                  GITHUB_PATH entries of this step
 * @property {string} summary                 GITHUB_STEP_SUMMARY of this step
 * @property {Record<string,string>} spawnEnv the exact environment the step ran with
 */

/**
 * @typedef {object} ActionResult
 * @property {StepResult} main
 * @property {StepResult|null} post
 * @property {Record<string,string>} outputs   step outputs (main's GITHUB_OUTPUT)
 * @property {Record<string,string>} state     states main saved (passed to post as STATE_*)
 * @property {string} summary                  main's then post's step summary
 * @property {{level:string,message:string,properties:Record<string,string>,step:string}[]} annotations
 * @property {string} log                      main's log then post's log (masked)
 * @property {() => void} cleanup               removes runnerTemp / the tool cache now
 * @property {(text: string) => string} mask    masks text with every mask and secret of the run
 */

// ---------------------------------------------------------------------------
// Inputs

/**
 * `${{ github.<name> }}`, the only expression action.yml's defaults use; any other expression
 * evaluates to the empty string.
 */
const evaluate = (text, github) =>
  String(text ?? '').replace(/\$\{\{\s*(.*?)\s*\}\}/g, (_m, expr) => {
    const name = /^github\.(\w+)$/.exec(expr)?.[1]
    return name ? String(github[name] ?? '') : ''
  })

/**
 * The value of every input, as the runner gives them to a step: the `with:` value (`overrides`,
 * undefined or null: not given), else action.yml's default, both evaluated; INPUT_<NAME> in `env`.
 * Names action.yml does not declare are passed too (the runner does, with a warning) and listed in `unexpected`.
 * @param {Record<string,{default?:unknown}>} declared  `inputs:` of action.yml
 * @param {Record<string,unknown>} overrides
 * @param {object} github
 */
function inputValues(declared, overrides, github) {
  const values = {}
  for (const [name, def] of Object.entries(declared)) values[name] = evaluate(def?.default, github)
  const unexpected = []
  for (const [name, v] of Object.entries(overrides)) {
    if (v === undefined || v === null) continue
    if (!(name in declared)) unexpected.push(name)
    values[name] = evaluate(v, github)
  }
  const env = Object.fromEntries(Object.entries(values).map(([name, v]) => [`INPUT_${name.replace(/ /g, '_').toUpperCase()}`, v]))
  return { values, env, unexpected }
}

// ---------------------------------------------------------------------------
// File commands and workflow commands

/**
 * Parses a key/value file command file (GITHUB_OUTPUT, GITHUB_STATE,
 * GITHUB_ENV) the way the runner does: empty lines are skipped; a line is
 * `name=value` when `=` comes before any `<<`, else a heredoc `name<<DELIM`
 * whose value is every following line up to a line equal to DELIM. Later
 * values of a name replace earlier ones.
 *
 * @param {string} content
 * @returns {{values: Record<string,string>, errors: string[]}}
 */
export function parseFileCommand(content) {
  const values = {}
  const errors = []
  const lines = content.split(/\r?\n/)
  // A trailing newline yields one final empty element; empty lines are skipped anyway.
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]
    if (line === '') continue
    const eq = line.indexOf('=')
    const hd = line.indexOf('<<')
    if (eq >= 0 && (hd < 0 || eq < hd)) {
      const key = line.slice(0, eq)
      if (!key) {
        errors.push(`Invalid format '${line}'. Name must not be empty`)
        continue
      }
      values[key] = line.slice(eq + 1)
    } else if (hd >= 0 && (eq < 0 || hd < eq)) {
      const key = line.slice(0, hd)
      const delim = line.slice(hd + 2)
      if (!key) {
        errors.push(`Invalid format '${line}'. Name must not be empty`)
        continue
      }
      if (!delim) {
        errors.push(`Invalid format '${line}'. Delimiter must not be empty`)
        continue
      }
      const body = []
      let closed = false
      for (i = i + 1; i < lines.length; i++) {
        if (lines[i] === delim) {
          closed = true
          break
        }
        body.push(lines[i])
      }
      if (!closed) {
        errors.push(`Invalid value. Matching delimiter not found '${delim}'`)
        break
      }
      values[key] = body.join('\n')
    } else {
      errors.push(`Invalid format '${line}'`)
    }
  }
  return { values, errors }
}

/** Unescapes the data part of a workflow command (%25 %0D %0A). */
function unescapeData(s) {
  return s.replace(/%0D/gi, '\r').replace(/%0A/gi, '\n').replace(/%25/g, '%')
}

/** Unescapes a property value of a workflow command (data escapes plus %3A %2C). */
function unescapeProperty(s) {
  return s.replace(/%0D/gi, '\r').replace(/%0A/gi, '\n').replace(/%3A/gi, ':').replace(/%2C/gi, ',').replace(/%25/g, '%')
}

/**
 * Parses one line as a workflow command `::name k=v,k=v::data`.
 * @param {string} line
 * @returns {{command: string, properties: Record<string,string>, data: string, rawData: string}|null}
 */
function parseWorkflowCommand(line) {
  const m = /^::([A-Za-z0-9_-]+)(?: ([^]*?))?::([^]*)$/.exec(line.trimStart())
  if (!m) return null
  const properties = {}
  if (m[2]) {
    for (const pair of m[2].split(',')) {
      const eq = pair.indexOf('=')
      if (eq <= 0) continue
      properties[pair.slice(0, eq).trim()] = unescapeProperty(pair.slice(eq + 1))
    }
  }
  return { command: m[1], properties, data: unescapeData(m[3]), rawData: m[3] }
}

/** Escapes a string for use in a RegExp. */
function reEscape(s) {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')
}

/**
 * Replaces every registered secret with `***`, longest first (as the runner's
 * secret masker does).
 * @param {string} text
 * @param {Iterable<string>} secrets
 */
function maskText(text, secrets) {
  const list = [...new Set([...secrets].filter((s) => typeof s === 'string' && s.length > 0))].sort((a, b) => b.length - a.length)
  if (list.length === 0) return text
  return text.replace(new RegExp(list.map(reEscape).join('|'), 'g'), '***')
}

/**
 * Processes the output of a step line by line like the runner's output
 * manager: it handles workflow commands and produces the masked log.
 */
class OutputProcessor {
  /**
   * @param {object} o
   * @param {string} o.step            'main' | 'post'
   * @param {Set<string>} o.secrets    values masked in the log (shared by main and post; grows)
   * @param {object[]} o.annotations   collected annotations (shared; grows)
   * @param {boolean} o.debug          RUNNER_DEBUG: show ::debug:: lines
   * @param {(line: string, info: {step: string, stream: string}) => void} [o.onLine]
   */
  constructor(o) {
    Object.assign(this, o)
    this.logLines = []
    this.stopToken = null
    this.groupDepth = 0
    this.partial = { stdout: '', stderr: '' }
  }

  /** Adds a mask value, also each line of a multi-line value. */
  addMask(value) {
    if (!value || !value.trim()) return
    this.secrets.add(value)
    if (/[\r\n]/.test(value)) {
      for (const l of value.split(/\r?\n/)) if (l.trim()) this.secrets.add(l)
    }
  }

  emit(line, stream) {
    const masked = maskText(line, this.secrets)
    this.logLines.push(masked)
    if (this.onLine) this.onLine(masked, { step: this.step, stream })
  }

  /** @param {string} line  @param {string} stream */
  line(line, stream) {
    if (line.endsWith('\r')) line = line.slice(0, -1)
    if (this.stopToken !== null) {
      if (line.trimStart() === `::${this.stopToken}::`) {
        this.stopToken = null
        return
      }
      this.emit(line, stream)
      return
    }
    const cmd = parseWorkflowCommand(line)
    if (!cmd) {
      this.emit(line, stream)
      return
    }
    switch (cmd.command) {
      case 'add-mask':
        this.addMask(cmd.data)
        return // the runner never prints it
      case 'error':
      case 'warning':
      case 'notice': {
        const message = maskText(cmd.data, this.secrets)
        this.annotations.push({ level: cmd.command, message, properties: cmd.properties, step: this.step })
        const label = cmd.command === 'error' ? 'Error' : cmd.command === 'warning' ? 'Warning' : 'Notice'
        const title = cmd.properties.title ? `${cmd.properties.title}: ` : ''
        this.emit(`${label}: ${title}${cmd.data}`, stream)
        return
      }
      case 'debug':
        if (this.debug) this.emit(`##[debug]${cmd.data}`, stream)
        return
      case 'group':
        this.groupDepth++
        this.emit(`▼ ${cmd.data}`, stream)
        return
      case 'endgroup':
        if (this.groupDepth > 0) this.groupDepth--
        this.emit('▲', stream)
        return
      case 'stop-commands':
        if (cmd.data) this.stopToken = cmd.data
        return
      case 'echo':
        return
      default:
        // Unknown or deprecated commands (set-output, save-state, set-env, add-path are
        // disabled on today's runners) are printed as-is.
        this.emit(line, stream)
    }
  }

  /** Feeds a chunk of process output. */
  chunk(buf, stream) {
    const text = this.partial[stream] + buf.toString('utf8')
    const parts = text.split('\n')
    this.partial[stream] = parts.pop()
    for (const p of parts) this.line(p, stream)
  }

  end() {
    for (const stream of ['stdout', 'stderr']) {
      if (this.partial[stream]) this.line(this.partial[stream], stream)
      this.partial[stream] = ''
    }
    return this.logLines.join('\n')
  }
}

// ---------------------------------------------------------------------------
// Context and event payload

const randomSha = () => randomBytes(20).toString('hex')
const REPOSITORY = 'colliery-io/brokkr'
const ACTOR = 'brokkr-bot'

/**
 * The simulated `github` context and event payload of a push to a branch or a pull request
 * (from another repository when `headRepo` is not this one).
 * @param {{event?: 'push'|'pull_request', ref?: string, sha?: string, headRepo?: string}} opts
 */
function makeContext({ event = 'push', ref, sha = randomSha(), headRepo = REPOSITORY, token, commitTime }) {
  if (event !== 'push' && event !== 'pull_request') throw new Error(`runAction: unsupported event '${event}' (push or pull_request)`)
  const isPR = event === 'pull_request'
  ref ??= isPR ? 'refs/pull/7/merge' : 'refs/heads/main'
  const [owner, name] = REPOSITORY.split('/')
  const refName = ref.replace(/^refs\/(heads|tags|pull)\//, '')
  const repository = {
    id: 612345678,
    name,
    full_name: REPOSITORY,
    private: false,
    fork: false,
    owner: { login: owner, id: 98765432, type: 'Organization' },
    html_url: `https://github.com/${REPOSITORY}`,
    default_branch: 'main',
    description: 'Brokkr: a broker and agents that run work close to the data',
    license: { key: 'apache-2.0', name: 'Apache License 2.0', spdx_id: 'Apache-2.0' }
  }
  const headRef = isPR ? 'feature/brokkr-change' : ''
  const payload = isPR
    ? {
        action: 'synchronize',
        number: 7,
        pull_request: {
          number: 7,
          state: 'open',
          head: {
            ref: headRef,
            sha: randomSha(),
            repo: {
              full_name: headRepo,
              name: headRepo.split('/')[1],
              fork: headRepo.toLowerCase() !== REPOSITORY.toLowerCase(),
              owner: { login: headRepo.split('/')[0] }
            }
          },
          base: { ref: 'main', sha: randomSha(), repo: repository },
          merge_commit_sha: sha
        },
        repository,
        sender: { login: ACTOR }
      }
    : {
        ref,
        before: randomSha(),
        after: sha,
        head_commit: { id: sha, message: 'Brokkr change', timestamp: commitTime ?? '2026-11-20T12:00:00+00:00', author: { name: ACTOR, username: ACTOR } },
        pusher: { name: ACTOR, email: `${ACTOR}@users.noreply.github.com` },
        repository,
        sender: { login: ACTOR }
      }
  const github = {
    action: '__colliery-io_brokkr-build-action',
    actor: ACTOR,
    actor_id: '41898282',
    api_url: 'https://api.github.com',
    base_ref: isPR ? 'main' : '',
    event_name: event,
    graphql_url: 'https://api.github.com/graphql',
    head_ref: headRef,
    job: 'build',
    ref,
    ref_name: refName,
    ref_protected: String(!isPR && refName === 'main'),
    ref_type: ref.startsWith('refs/tags/') ? 'tag' : 'branch',
    repository: REPOSITORY,
    repository_id: String(repository.id),
    repository_owner: owner,
    repository_owner_id: String(repository.owner.id),
    retention_days: '90',
    run_attempt: '1',
    run_id: String(randomInt(1_000_000_000, 9_999_999_999)),
    run_number: String(randomInt(1, 5000)),
    server_url: 'https://github.com',
    sha,
    token: token ?? `ghs_${randomBytes(18).toString('base64url')}`,
    triggering_actor: ACTOR,
    workflow: 'Build',
    workflow_ref: `${REPOSITORY}/.github/workflows/build.yml@${ref}`,
    workflow_sha: sha
  }
  return { github, payload }
}

// ---------------------------------------------------------------------------
// Running

/** Temp dirs made by runAction in this process: removed at exit unless BROKKR_E2E_KEEP_TEMP=1. */
const tempDirs = new Set()
process.once('exit', () => {
  if (process.env.BROKKR_E2E_KEEP_TEMP === '1') return
  for (const d of tempDirs) {
    try {
      fs.rmSync(d, { recursive: true, force: true })
    } catch {}
  }
})

function mkTemp(prefix) {
  // under the e2e run's own directory when there is one: global teardown removes it whole, as jest
  // workers end without running exit handlers
  const d = fs.mkdtempSync(path.join(process.env.BROKKR_E2E_TMP || os.tmpdir(), prefix))
  tempDirs.add(d)
  return d
}

/** Creates the empty file-command files for one step. */
function stepFiles(root, step) {
  const dir = path.join(root, `_runner_file_commands_${step}`)
  fs.mkdirSync(dir, { recursive: true })
  const files = {}
  for (const [key, name] of [
    ['GITHUB_OUTPUT', 'set_output'],
    ['GITHUB_STATE', 'save_state'],
    ['GITHUB_ENV', 'set_env'],
    ['GITHUB_PATH', 'add_path'],
    ['GITHUB_STEP_SUMMARY', 'step_summary']
  ]) {
    const f = path.join(dir, `${name}_${randomBytes(8).toString('hex')}`)
    fs.writeFileSync(f, '')
    files[key] = f
  }
  return files
}

function readFile(f) {
  try {
    return fs.readFileSync(f, 'utf8')
  } catch {
    return ''
  }
}

/**
 * Spawns one step (node <entry>) and processes its output.
 * @returns {Promise<StepResult>}
 */
function runStep({ step, node, entry, cwd, env, files, processor, timeoutMs, signal, cancel }) {
  return new Promise((resolve) => {
    const started = Date.now()
    const out = []
    const err = []
    let timedOut = false
    let settled = false
    const child = spawn(node, [entry], { cwd, env, stdio: ['ignore', 'pipe', 'pipe'], detached: true })
    if (child.pid) trackProcess(child.pid, `action ${step}`, { group: true })
    const kill = () => stopProcesses([{ pid: child.pid, group: true }], { graceMs: 0 })
    const timer =
      timeoutMs > 0
        ? setTimeout(() => {
            timedOut = true
            kill()
          }, timeoutMs)
        : null
    let cancelled = false
    const onAbort = () => {
      cancelled = true
      kill()
    }
    if (signal?.aborted) onAbort()
    else signal?.addEventListener?.('abort', onAbort, { once: true })
    // the runner's cancellation: SIGINT to the step's process, SIGTERM 7.5 s later, then the kill
    const escalation = []
    const onCancel = () => {
      cancelled = true
      try {
        child.kill('SIGINT')
      } catch {}
      escalation.push(
        setTimeout(() => {
          try {
            child.kill('SIGTERM')
          } catch {}
        }, 7500)
      )
      escalation.push(setTimeout(kill, 10_000))
    }
    if (cancel?.aborted) onCancel()
    else cancel?.addEventListener?.('abort', onCancel, { once: true })
    child.stdout.on('data', (b) => {
      out.push(b)
      processor.chunk(b, 'stdout')
    })
    child.stderr.on('data', (b) => {
      err.push(b)
      processor.chunk(b, 'stderr')
    })
    const finish = (code, sig, spawnError) => {
      if (settled) return
      settled = true
      if (timer) clearTimeout(timer)
      for (const t of escalation) clearTimeout(t)
      signal?.removeEventListener?.('abort', onAbort)
      cancel?.removeEventListener?.('abort', onCancel)
      if (spawnError) processor.line(`##[error]failed to start ${node}: ${spawnError.message}`, 'stderr')
      if (timedOut) processor.line(`##[error]The step was cancelled after ${timeoutMs} ms (harness timeout)`, 'stderr')
      if (cancelled) processor.line('##[error]The operation was canceled.', 'stderr')
      const log = processor.end()
      const outputs = parseFileCommand(readFile(files.GITHUB_OUTPUT))
      const state = parseFileCommand(readFile(files.GITHUB_STATE))
      const envCmd = parseFileCommand(readFile(files.GITHUB_ENV))
      const pathLines = readFile(files.GITHUB_PATH)
        .split(/\r?\n/)
        .filter((l) => l.trim() !== '')
      const fileCommandErrors = [...outputs.errors, ...state.errors, ...envCmd.errors]
      for (const e of fileCommandErrors) processor.annotations.push({ level: 'error', message: e, properties: { source: 'runner' }, step })
      const result = {
        code: spawnError ? 127 : code,
        signal: sig ?? null,
        timedOut,
        cancelled,
        outcome: code === 0 && !spawnError && fileCommandErrors.length === 0 ? 'success' : 'failure',
        stdout: Buffer.concat(out).toString('utf8'),
        stderr: Buffer.concat(err).toString('utf8'),
        log,
        durationMs: Date.now() - started,
        outputs: outputs.values,
        state: state.values,
        env: envCmd.values,
        path: pathLines,
        summary: readFile(files.GITHUB_STEP_SUMMARY),
        spawnEnv: env
      }
      if (child.pid) pgidOf.set(result, child.pid)
      resolve(result)
    }
    child.on('error', (e) => finish(null, null, e))
    child.on('close', (code, sig) => finish(code, sig))
    // A background process the step left behind may keep stdout/stderr open;
    // like the runner, do not wait for it: give the pipes a moment, then move on.
    child.on('exit', (code, sig) => {
      setTimeout(() => {
        if (settled) return
        child.stdout.destroy()
        child.stderr.destroy()
        finish(code, sig)
      }, 2000).unref()
    })
  })
}

/** Process group id of each step result (the step's pid; it was spawned detached). */
const pgidOf = new WeakMap()

/**
 * Runs the action's main and post steps like the GitHub runner does.
 *
 * @param {object} [opts]
 * @param {Record<string,unknown>} [opts.inputs]  `with:` values by input name (as in action.yml)
 * @param {'push'|'pull_request'} [opts.event='push']
 * @param {string} [opts.ref]        default refs/heads/main (push) or refs/pull/7/merge (PR)
 * @param {string} [opts.sha]        github.sha / GITHUB_SHA (for a PR: the merge commit); default random
 * @param {string} [opts.headRepo]   PR only: full name of the head repository (a fork when it differs)
 * @param {string} [opts.token]      github.token (default a random ghs_ token); masked like the runner masks it
 * @param {string} [opts.commitTime] push only: head_commit.timestamp (default one fixed time, as every job of a run sees)
 * @param {Record<string,string>} [opts.env]  extra environment (wins over everything but the INPUT_ and file-command variables)
 * @param {string[]} [opts.secrets]  extra values masked in the log like workflow secrets
 * @param {string} [opts.node]       node binary (default process.execPath)
 * @param {string|null} [opts.dockerConfig]  DOCKER_CONFIG for the steps (default: the caller's DOCKER_CONFIG, else a
 *   fresh makeDockerConfig() per run when the stack env is known; null: no DOCKER_CONFIG at all)
 * @param {{url:string, token:string, version?: 1|2}|null} [opts.cache]  cache service (omitted when null): v1 gives
 *   ACTIONS_CACHE_URL + ACTIONS_RUNTIME_TOKEN; v2 gives what today's runners give, ACTIONS_RESULTS_URL +
 *   ACTIONS_RUNTIME_TOKEN + ACTIONS_CACHE_SERVICE_V2=True and no ACTIONS_CACHE_URL
 * @param {'previous'|'current'} [opts.engine='previous']  which engine generation of the stack runs docker
 * @param {AbortSignal} [opts.cancel]  cancels the job like the runner: SIGINT to main, SIGTERM 7.5 s later,
 *   SIGKILL of its group 2.5 s after that; the post step still runs
 * @param {boolean} [opts.post=true] run the post step (always, even after a failed main)
 * @param {string} [opts.cwd]        working directory and GITHUB_WORKSPACE (default repo root)
 * @param {string} [opts.actionDir]  directory holding action.yml and the bundles (default repo root)
 * @param {{env: Record<string,string>}} [opts.stack]  the value of ensureStack(); default: the stack env file if present
 * @param {number} [opts.timeoutMs]  per-step kill timeout (default 30 min)
 * @param {AbortSignal} [opts.signal] kills the running step when aborted
 * @param {(line: string, info: {step: string, stream: string}) => void} [opts.onLine]  live masked log lines
 * @returns {Promise<ActionResult>}
 */
export async function runAction(opts = {}) {
  const actionDir = path.resolve(opts.actionDir ?? REPO_ROOT)
  const cwd = path.resolve(opts.cwd ?? REPO_ROOT)
  const meta = YAML.parse(fs.readFileSync(path.join(actionDir, 'action.yml'), 'utf8'))
  meta.inputs ??= {}

  const runnerTemp = mkTemp('brokkr-runner-temp-')
  const toolCache = mkTemp('brokkr-toolcache-')
  const eventPath = path.join(runnerTemp, '_github_workflow', 'event.json')
  const { github, payload } = makeContext(opts)
  fs.mkdirSync(path.dirname(eventPath), { recursive: true })
  fs.writeFileSync(eventPath, JSON.stringify(payload, null, 2))
  const inputs = inputValues(meta.inputs, opts.inputs ?? {}, github)

  // --- base environment: clean, only what a hosted runner's step would see
  const extra = { ...(opts.env ?? {}) }
  let stack = opts.stack
  try {
    stack ??= { env: readStackEnvSync() }
  } catch {}
  const engine = stack?.env ? engineEnv(stack.env, opts.engine ?? 'previous') : null
  let basePath = extra.PATH ?? process.env.PATH ?? '/usr/local/bin:/usr/bin:/bin'
  if (engine?.bin && !basePath.split(path.delimiter).includes(engine.bin)) basePath = `${engine.bin}${path.delimiter}${basePath}`
  delete extra.PATH

  /** @type {Record<string,string>} */
  const base = { PATH: basePath }
  if (process.env.HOME) base.HOME = process.env.HOME
  const dockerHost = engine?.DOCKER_HOST ?? process.env.DOCKER_HOST
  if (dockerHost) base.DOCKER_HOST = dockerHost
  // DOCKER_CONFIG: the given dir; else the caller's; else, when the stack is
  // known, a fresh one per run holding the stack's buildx plugin (a hosted
  // runner starts every job with no docker login either). null = none (HOME/.docker).
  let dockerConfig = opts.dockerConfig === null ? undefined : (opts.dockerConfig ?? process.env.DOCKER_CONFIG)
  if (dockerConfig === undefined && opts.dockerConfig !== null && engine?.buildxPlugin) dockerConfig = makeDockerConfig({ engine: engine.engine })
  if (dockerConfig) base.DOCKER_CONFIG = dockerConfig

  // GITHUB_<NAME> for every context value but the token (the runner never exports it)
  const { token, ...vars } = github
  for (const [k, v] of Object.entries(vars)) base[`GITHUB_${k.toUpperCase()}`] = v
  const arch = { x64: 'X64', arm64: 'ARM64', arm: 'ARM', ia32: 'X86' }[os.arch()] ?? os.arch().toUpperCase()
  Object.assign(base, {
    CI: 'true',
    GITHUB_ACTIONS: 'true',
    GITHUB_ACTION_PATH: actionDir,
    GITHUB_ACTION_REF: '',
    GITHUB_ACTION_REPOSITORY: '',
    GITHUB_EVENT_PATH: eventPath,
    GITHUB_WORKSPACE: cwd,
    ImageOS: 'ubuntu24',
    RUNNER_ARCH: arch,
    RUNNER_ENVIRONMENT: 'github-hosted',
    RUNNER_NAME: 'GitHub Actions 1',
    RUNNER_OS: 'Linux',
    RUNNER_TEMP: runnerTemp,
    RUNNER_TOOL_CACHE: toolCache,
    RUNNER_WORKSPACE: path.dirname(cwd)
  })
  if (opts.cache) {
    const url = opts.cache.url.endsWith('/') ? opts.cache.url : `${opts.cache.url}/`
    if (opts.cache.version === 2) {
      base.ACTIONS_RESULTS_URL = url
      base.ACTIONS_CACHE_SERVICE_V2 = 'True'
    } else {
      base.ACTIONS_CACHE_URL = url
    }
    base.ACTIONS_RUNTIME_TOKEN = opts.cache.token
  }
  // ACTIONS_STEP_DEBUG is a repository secret/variable to the runner: it turns
  // RUNNER_DEBUG on but is not itself exported to the step.
  const stepDebug = String(extra.ACTIONS_STEP_DEBUG ?? '').toLowerCase() === 'true'
  delete extra.ACTIONS_STEP_DEBUG
  Object.assign(base, extra)
  if (stepDebug) base.RUNNER_DEBUG = '1'
  // INPUT_* are step-scoped and always win
  Object.assign(base, inputs.env)

  const secrets = new Set([token, ...(opts.secrets ?? [])].filter(Boolean))
  const annotations = []
  if (inputs.unexpected.length) {
    annotations.push({
      level: 'warning',
      message: `Unexpected input(s) '${inputs.unexpected.join("', '")}', valid inputs are ['${Object.keys(meta.inputs).join("', '")}']`,
      properties: { source: 'runner' },
      step: 'main'
    })
  }
  const debug = base.RUNNER_DEBUG === '1'
  const node = opts.node ?? process.execPath
  const timeoutMs = opts.timeoutMs ?? DEFAULT_STEP_TIMEOUT_MS

  // --- main
  const mainFiles = stepFiles(runnerTemp, 'main')
  const mainEnv = { ...base, ...mainFiles }
  const main = await runStep({
    step: 'main',
    node,
    entry: path.join(actionDir, meta.runs.main),
    cwd,
    env: mainEnv,
    files: mainFiles,
    processor: new OutputProcessor({ step: 'main', secrets, annotations, debug, onLine: opts.onLine }),
    timeoutMs,
    signal: opts.signal,
    cancel: opts.cancel
  })

  // --- post (post-if: always())
  let post = null
  if (meta.runs.post && opts.post !== false) {
    const postFiles = stepFiles(runnerTemp, 'post')
    const postEnv = { ...base, ...main.env }
    if (main.path.length) postEnv.PATH = [...[...main.path].reverse(), postEnv.PATH].join(path.delimiter)
    for (const [k, v] of Object.entries(main.state)) postEnv[`STATE_${k}`] = v
    Object.assign(postEnv, inputs.env, postFiles)
    post = await runStep({
      step: 'post',
      node,
      entry: path.join(actionDir, meta.runs.post),
      cwd,
      env: postEnv,
      files: postFiles,
      processor: new OutputProcessor({ step: 'post', secrets, annotations, debug, onLine: opts.onLine }),
      timeoutMs,
      signal: opts.signal
    })
  }

  // end of the job: the runner kills the processes the steps left behind
  await stopProcesses(
    [main, post].filter((s) => pgidOf.has(s)).map((s) => ({ pid: pgidOf.get(s), group: true })),
    { graceMs: 0 }
  )

  return {
    main,
    post,
    outputs: main.outputs,
    state: main.state,
    summary: main.summary + (post?.summary ?? ''),
    annotations,
    log: [main.log, post?.log].filter((l) => l !== undefined && l !== '').join('\n'),
    /** Masks text with every secret and mask known at the end of the run (as the runner's log would). */
    mask(text) {
      return maskText(text, secrets)
    },
    /** Removes this run's RUNNER_TEMP and RUNNER_TOOL_CACHE now (they go at process exit anyway). */
    cleanup() {
      for (const d of [runnerTemp, toolCache]) {
        fs.rmSync(d, { recursive: true, force: true })
        tempDirs.delete(d)
      }
    }
  }
}

/**
 * Exit code a workflow would report for a result: main's, or post's when main
 * passed and post failed. A file-command error fails the step too.
 * @param {ActionResult} r
 */
export function resultExitCode(r) {
  const stepCode = (s) => (s.code === 0 && s.outcome === 'failure' ? 1 : (s.code ?? 1))
  const m = stepCode(r.main)
  if (m !== 0) return m
  return r.post ? stepCode(r.post) : 0
}

/**
 * The default commit for local runs: `git rev-parse HEAD` of the repo, or a fixed value.
 * @param {string} [dir]
 */
export function repoHeadSha(dir = REPO_ROOT) {
  try {
    return execFileSync('git', ['rev-parse', 'HEAD'], { cwd: dir, encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim()
  } catch {
    return '0123456789abcdef0123456789abcdef01234567'
  }
}
