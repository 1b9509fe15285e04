// Readers of BuildKit's plain progress output (`--progress plain`, what the action logs), shared by
// the e2e suite and the benchmarks.

const STEP = /^#(\d+) \[([^\]]+)\] (.*)$/
const TRANSFER = /^#(\d+) sha256:([0-9a-f]{12,64}) ([\d.]+)([kMG]?B) \/ ([\d.]+)([kMG]?B) ([\d.]+)s done$/
const UNIT = { B: 1, kB: 1e3, MB: 1e6, GB: 1e9 }

/**
 * @typedef {object} CachedFetch
 * @property {string} id        the vertex number (`#16`)
 * @property {string} title     e.g. `[stage-2 2/4] COPY --from=deps /deps/vendor.bin ...`
 * @property {number} seconds   the step's wall time (its longest DONE): for a CACHED step that is the
 *                              lazy fetch of its layers from the cache, waiting included
 * @property {number} transferSeconds  the longest single blob transfer BuildKit reported
 * @property {number} bytes     the largest blob fetched
 * @property {boolean} cached   BuildKit printed CACHED for it
 */

/**
 * Steps that fetched layers instead of running: BuildKit found them in the cache and pulls their
 * layers lazily when a later step needs them (it marks such a step CACHED, though not always
 * before the fetch). FROM steps (base image pulls) are left out. Such a step does nothing but fetch
 * and unpack, so its wall time is the fetch as the builder sees it, including any wait before the
 * first byte, which a server-side log cannot see.
 * @param {string} log
 * @returns {CachedFetch[]}
 */
export function cachedLayerFetches(log) {
  const steps = new Map()
  const get = (id) => {
    if (!steps.has(id)) steps.set(id, { id: `#${id}`, title: '', cached: false, done: [], transfers: [] })
    return steps.get(id)
  }
  for (const line of log.split('\n')) {
    let m = STEP.exec(line)
    if (m) {
      if (!/^internal|^auth/.test(m[2]) && !/^FROM /.test(m[3])) get(m[1]).title ||= `[${m[2]}] ${m[3]}`
      continue
    }
    m = /^#(\d+) CACHED$/.exec(line)
    if (m) {
      get(m[1]).cached = true
      continue
    }
    m = /^#(\d+) DONE ([\d.]+)s$/.exec(line)
    if (m) {
      get(m[1]).done.push(Number(m[2]))
      continue
    }
    m = TRANSFER.exec(line)
    if (m) get(m[1]).transfers.push({ bytes: Number(m[5]) * UNIT[m[6]], seconds: Number(m[7]) })
  }
  return [...steps.values()]
    .filter((s) => s.title && s.transfers.length && s.done.length)
    .map((s) => ({
      id: s.id,
      cached: s.cached,
      title: s.title,
      seconds: Math.max(...s.done),
      transferSeconds: Math.max(...s.transfers.map((t) => t.seconds)),
      bytes: Math.max(...s.transfers.map((t) => t.bytes))
    }))
}

/**
 * The slowest of the cached-layer fetches of some logs.
 * @param {string[]} logs
 * @returns {CachedFetch | null}
 */
export function slowestCachedFetch(logs) {
  return logs.flatMap((l) => cachedLayerFetches(l)).reduce((a, f) => (a === null || f.seconds > a.seconds ? f : a), /** @type {CachedFetch | null} */ (null))
}

/**
 * Dockerfile steps of a BuildKit plain-progress log and how many were CACHED. FROM lines and
 * BuildKit's internal vertices (load build definition, metadata, context transfer) are left out.
 * @param {string} log
 * @returns {{all: number, cached: number, run: number, cachedRun: number}}
 */
export function stepCounts(log) {
  const steps = new Map()
  for (const line of log.split('\n')) {
    let m = STEP.exec(line)
    if (m && !/^internal|^auth/.test(m[2])) {
      if (!steps.has(m[1])) steps.set(m[1], { run: /^RUN /.test(m[3]), from: /^FROM /.test(m[3]), cached: false })
      continue
    }
    m = /^#(\d+) CACHED$/.exec(line)
    if (m && steps.has(m[1])) steps.get(m[1]).cached = true
  }
  const all = [...steps.values()].filter((s) => !s.from)
  return {
    all: all.length,
    cached: all.filter((s) => s.cached).length,
    run: all.filter((s) => s.run).length,
    cachedRun: all.filter((s) => s.run && s.cached).length
  }
}
