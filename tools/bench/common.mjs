// What the benchmark tools share: the command line, statistics and formats, markdown tables, the
// git state a run reports, and docs/benchmarks.md itself. One file, two generators: `npm run bench`
// writes it as a whole and `npm run bench:pipeline` owns one marked block inside it. bench.mjs
// carries the block over when it regenerates the file, pipeline.mjs replaces only the block (or
// appends it when the file has none yet). A second marked block holds findings written by hand (an
// investigation's timeline, say); both generators keep it as it is.

import { execFileSync } from 'node:child_process'
import * as fs from 'node:fs'
import { parseArgs } from 'node:util'

/** parseArgs plus -h/--help: the parsed `{values, positionals}`, or the exit code when usage was printed. */
export function cli(name, usage, options, o = {}) {
  try {
    const parsed = parseArgs({ ...o, options: { ...options, help: { type: 'boolean', short: 'h', default: false } } })
    if (!parsed.values.help) return parsed
    process.stdout.write(`${usage}\n`)
    return 0
  } catch (e) {
    process.stderr.write(`${name}: ${e.message}\n${usage}\n`)
    return 2
  }
}

/** A count option: its number, `fallback` when it is none or 0, never under `min`. */
export const count = (value, fallback, min) => Math.max(min, Number(value) || fallback)

/** Runs `main` and exits with its code (a keep-alive socket of a client library must not keep the process up). */
export function runMain(name, main) {
  main().then(
    (code) => process.exit(code),
    (e) => {
      process.stderr.write(`${name}: ${e?.stack ?? e}\n`)
      process.exit(1)
    }
  )
}

/** Progress on stderr, prefixed with the tool's name and (`clock` characters of) the time of day. */
export const sayer =
  (name, clock = 0) =>
  (m) =>
    process.stderr.write(`${name}: ${clock ? `${new Date().toISOString().slice(11, 11 + clock)} ` : ''}${m}\n`)

/** Median, min, max and count of the finite values. */
export function stats(xs) {
  const s = xs.filter(Number.isFinite).sort((a, b) => a - b)
  const m = s.length >> 1
  const median = !s.length ? NaN : s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2
  return { n: s.length, median, min: Math.min(...s), max: Math.max(...s) }
}
export const median = (xs) => stats(xs).median

export const secs = (ms, digits = 1) => (Number.isFinite(ms) ? `${(ms / 1000).toFixed(digits)} s` : 'n/a')
export const msf = (ms) => (Number.isFinite(ms) ? `${ms.toFixed(0)} ms` : 'n/a')
export const mib = (b) =>
  !Number.isFinite(b) ? 'n/a' : b >= 1048576 ? `${(b / 1048576).toFixed(1)} MiB` : b >= 1024 ? `${(b / 1024).toFixed(1)} KiB` : `${b} B`
export const rangeOf = (st, f) => (st.n ? `${f(st.min)} – ${f(st.max)}` : 'n/a')

export const table = (head, rows) =>
  [`| ${head.join(' | ')} |`, `| ${head.map(() => '---').join(' | ')} |`, ...rows.map((r) => `| ${r.join(' | ')} |`)].join('\n')

/** Short commit of `cwd` and its `git status --porcelain` lines (limited to `paths` when given). */
export function gitState(cwd, paths = []) {
  const git = (...args) => execFileSync('git', args, { cwd, encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] })
  let commit = 'unknown'
  try {
    commit = git('rev-parse', '--short', 'HEAD').trim()
    // not trimmed: porcelain lines start with a status column that may be a space
    return {
      commit,
      dirty: git('status', '--porcelain', '--', ...paths)
        .split('\n')
        .filter(Boolean)
    }
  } catch {
    return { commit, dirty: [] }
  }
}

const PIPELINE_BEGIN = '<!-- bench:pipeline:begin (written by `npm run bench:pipeline`; `npm run bench` keeps it) -->'
const PIPELINE_END = '<!-- bench:pipeline:end -->'
const FINDINGS_BEGIN = '<!-- findings:begin (written by hand; both generators keep it) -->'
const FINDINGS_END = '<!-- findings:end -->'

const readOr = (file) => (fs.existsSync(file) ? fs.readFileSync(file, 'utf8') : '')
function block(text, begin, end) {
  const b = text.indexOf(begin)
  const e = text.indexOf(end)
  return b < 0 || e < b ? '' : text.slice(b, e + end.length)
}

/** `text` with its pipeline block replaced by `kept` (appended at the end when absent). */
function withPipelineBlock(text, kept) {
  const b = text.indexOf(PIPELINE_BEGIN)
  const e = text.indexOf(PIPELINE_END)
  if (b >= 0 && e > b) return text.slice(0, b) + kept + text.slice(e + PIPELINE_END.length)
  const base = text.replace(/\s*$/, '')
  return `${base}${base ? '\n\n' : ''}${kept}\n`
}

/** For bench.mjs: writes the fresh markdown to `file` with the findings and pipeline blocks the old file held. */
export function writeWithKeptBlocks(file, fresh) {
  const old = readOr(file)
  const kept = [block(old, FINDINGS_BEGIN, FINDINGS_END), block(old, PIPELINE_BEGIN, PIPELINE_END)].filter(Boolean).join('\n\n')
  fs.writeFileSync(file, kept ? withPipelineBlock(fresh, kept) : fresh)
}

/** For pipeline.mjs: writes `body` between the pipeline markers of `file`, keeping everything else. */
export function writePipelineBlock(file, body) {
  fs.writeFileSync(file, withPipelineBlock(readOr(file), `${PIPELINE_BEGIN}\n${body.replace(/\s*$/, '')}\n${PIPELINE_END}`))
}

/**
 * The most of these times that fall within any 60 s (the window a per-minute rate limit counts).
 * @param {number[]} times  ms since 1970
 * @returns {number}
 */
export function peakPerMinute(times) {
  const t = [...times].sort((a, b) => a - b)
  let peak = 0
  for (let i = 0, j = 0; j < t.length; j++) {
    while (t[j] - t[i] >= 60_000) i++
    peak = Math.max(peak, j - i + 1)
  }
  return peak
}
