import { classifyDockerOutput, type Outcome } from '../model/errors.js'

// Reading BuildKit's plain progress log: `#N <title>` opens a step, `#N DONE|CACHED|ERROR: ...` ends it.

/**
 * A build fails either while solving (the Dockerfile's fault: final) or while exporting and
 * pushing (the registry's: worth another try, the layers come from cache). BuildKit's messages
 * from a flaky registry are poor (`failed to solve: not found` after a 502 on an upload), so the
 * phase decides, read from the plain progress log: which step printed the ERROR.
 */
export function classifyBuildFailure(log: string, errorText: string): Outcome {
  // a Dockerfile step that exited non-zero is the Dockerfile's fault, whatever words its command holds
  if (/did not complete successfully: exit code/.test(errorText)) return 'fatal'
  const base = classifyDockerOutput(errorText)
  if (base === 'auth') return 'auth'
  return failedWhilePushing(log, errorText) ? 'transient' : base
}

const PUSH_STEP = /^(exporting|pushing|writing image|naming to|\[auth\])/

export function failedWhilePushing(log: string, errorText: string): boolean {
  if (/failed to push|pushing|exporting to image/i.test(errorText)) return true
  if (failedSteps(log).some((s) => PUSH_STEP.test(s.title))) return true
  // dockerd pushes again after BuildKit ("pushing <ref> with docker") and reads the tag back; those
  // fail without an ERROR line of their own step, or after every step printed DONE
  const steps = stepStates(log)
  const unfinished = steps.filter((s) => !s.finished)
  return unfinished.length > 0 ? unfinished.some((s) => PUSH_STEP.test(s.title)) : steps.some((s) => PUSH_STEP.test(s.title))
}

/** Every step of a plain-progress log: its title and whether it printed DONE or CACHED. */
function stepStates(log: string): Array<{ title: string; finished: boolean }> {
  const titles = new Map<string, string>()
  for (const [, id, title] of log.matchAll(/^#(\d+) (?!\d|ERROR|DONE|CANCELED|CACHED)(.*)$/gm)) {
    // #0 is buildx's banner ("building with ... instance"), not a step
    if (id !== '0' && !titles.has(id)) titles.set(id, title)
  }
  const finished = new Set([...log.matchAll(/^#(\d+) (?:DONE|CACHED)\b/gm)].map((m) => m[1]))
  return [...titles].map(([id, title]) => ({ title, finished: finished.has(id) }))
}

/** Steps of a BuildKit plain-progress log that ended in ERROR, with their titles (a step's first line). */
export function failedSteps(log: string): Array<{ title: string; error: string }> {
  return [...log.matchAll(/^#(\d+) ERROR: (.*)$/gm)].map(([, id, error]) => ({
    title: new RegExp(`^#${id} (?!\\d|ERROR|DONE|CANCELED)(.*)$`, 'm').exec(log)?.[1] ?? '',
    error
  }))
}

/**
 * With ignore-error=true a broken cache never fails the build, and BuildKit only mentions it in the
 * log. The first such error line, so the action can say it aloud.
 */
export function cacheProblem(log: string): string | undefined {
  const step = failedSteps(log).find((s) => /cache/i.test(s.title))
  return step && `${step.title}: ${step.error}`.slice(0, 300)
}

/** Title of the step that writes the build result (an image push, an OCI layout, a docker tarball). */
const OUTPUT_STEP = /^exporting to (image|oci image format|docker image format)\b/
/**
 * Cache export, BuildKit's step titles per backend ("exporting to GitHub Actions Cache", "exporting
 * cache to registry", "exporting cache to client directory") or its first progress line. BuildKit
 * writes the result first, then the cache.
 */
const CACHE_EXPORT = /^(exporting (cache\b|to GitHub Actions Cache\b)|preparing build cache for export\b|exporting content cache\b)/

/** Follows a plain-progress log line by line: has cache export begun, has the result been written? */
export class BuildProgress {
  private readonly titles = new Map<string, string>()
  private readonly finished = new Set<string>()
  /** a cache export step has started */
  cacheExportStarted = false

  observe(line: string): void {
    const step = /^#(\d+) (.*)$/.exec(line)
    if (!step || step[1] === '0') return
    const [, id, rest] = step
    if (/^(DONE|CACHED)\b/.test(rest)) this.finished.add(id)
    else if (!/^(\d|ERROR|CANCELED)/.test(rest) && !this.titles.has(id)) this.titles.set(id, rest)
    if (CACHE_EXPORT.test(rest)) this.cacheExportStarted = true
  }

  /** every output step seen has finished, and there was one */
  get outputWritten(): boolean {
    const outputs = [...this.titles].filter(([, title]) => OUTPUT_STEP.test(title))
    return outputs.length > 0 && outputs.every(([id]) => this.finished.has(id))
  }
}

/** BuildKit's step that fetches a cache backend's manifest before any Dockerfile step runs. */
const CACHE_IMPORT = /^importing cache manifest from /
/** A blob's download progress (`sha256:<hex> 0B / 1.07MB 5.3s`, ` done` when complete). */
const BLOB_PROGRESS = /^sha256:([0-9a-f]{64}) (\S+) \/ \S+.*?( done)?$/
/** Unpacking a downloaded layer: work, not a wait on the cache. */
const EXTRACTING = /^extracting sha256:[0-9a-f]{64}\b/

/**
 * Steps whose blobs come from a registry, not from the cache: base image pulls, a `# syntax=`
 * frontend image, named contexts and BuildKit's own.
 */
const NOT_A_CACHE_READ = /^(\[[^\]]+\] FROM |\[internal\]|\[auth\]|\[context |docker-image:\/\/)/

/**
 * Follows the reads of the build cache in a plain-progress log: the `importing cache manifest` step,
 * and the layers of cached steps, which BuildKit downloads lazily from the cache backend when a
 * later step needs them (under that step, whether or not it printed CACHED first). BuildKit retries
 * a failing download with growing waits and gives up in no bounded time, so the only sign of a
 * cache that cannot be read is a read that makes no progress.
 */
export class CacheReads {
  private readonly titles = new Map<string, string>()
  /** open reads by step id: what is read, and the bytes each blob has reached */
  private readonly open = new Map<string, { title: string; blobs: Map<string, string> }>()
  private lastProgress = 0

  observe(line: string, now: number): void {
    const step = /^#(\d+) (.*)$/.exec(line)
    if (!step || step[1] === '0') return
    const [, id, rest] = step
    if (/^(DONE|ERROR|CANCELED)\b/.test(rest)) {
      this.open.delete(id)
      return
    }
    if (EXTRACTING.test(rest)) {
      if (this.open.has(id)) this.lastProgress = now
      return
    }
    const blob = BLOB_PROGRESS.exec(rest)
    if (blob) {
      const title = this.titles.get(id) ?? ''
      if (!title || NOT_A_CACHE_READ.test(title)) return
      const [, digest, bytes, done] = blob
      const read = this.open.get(id)
      if (done) {
        read?.blobs.delete(digest)
        if (read && read.blobs.size === 0) this.open.delete(id)
      } else if (!read) {
        this.open.set(id, { title, blobs: new Map([[digest, bytes]]) })
      } else if (read.blobs.get(digest) === bytes) {
        return
      } else {
        read.blobs.set(digest, bytes)
      }
      this.lastProgress = now
      return
    }
    if (this.titles.has(id)) return
    this.titles.set(id, rest)
    if (CACHE_IMPORT.test(rest)) {
      this.open.set(id, { title: rest, blobs: new Map() })
      this.lastProgress = now
    }
  }

  /** what is being read now (a step's title), if anything */
  get reading(): string | undefined {
    return [...this.open.values()][0]?.title
  }

  /** how long the open reads have made no progress, or undefined when nothing is being read */
  idleFor(now: number): number | undefined {
    return this.open.size > 0 ? now - this.lastProgress : undefined
  }
}

/**
 * The cache service refused new entries for its rate limit (GitHub: 200 a minute per repository
 * since January 2026; 429 with Retry-After, Twirp `resource_exhausted`). BuildKit before v0.27
 * retries without honouring Retry-After until the export is stopped, and then names the code.
 */
export function cacheRateLimited(log: string): boolean {
  return failedSteps(log).some((s) => CACHE_EXPORT.test(s.title) && /resource_exhausted|rate limit|too many requests|\b429\b/i.test(s.error))
}

/** The cache service turned down the v1 protocol (switched off by GitHub on 2025-04-15). */
export function refusedLegacyCacheProtocol(log: string): boolean {
  return /legacy service is shutting down|gha-cache-sunset|twirp error bad_route|"code":"bad_route"/i.test(log)
}

/** What the build log says the cache did: Dockerfile steps answered from cache, and layers the export wrote. */
export interface CacheActivity {
  /** Dockerfile steps (`[stage n/m] ...`) in the log, and how many of them were CACHED */
  steps: number
  cachedSteps: number
  /** distinct layers the cache export wrote (each a new cache entry; layers already there are not written again) */
  layersWritten: number
  /** the cache export ran to its end */
  exported: boolean
}

export function cacheActivity(log: string): CacheActivity {
  const titles = new Map<string, string>()
  for (const [, id, title] of log.matchAll(/^#(\d+) (\[(?!internal\])[^\]]*\] .*)$/gm)) if (!titles.has(id)) titles.set(id, title)
  const cached = new Set([...log.matchAll(/^#(\d+) CACHED\b/gm)].map((m) => m[1]).filter((id) => titles.has(id)))
  const exportIds = new Set([...log.matchAll(/^#(\d+) (.*)$/gm)].filter(([, , rest]) => CACHE_EXPORT.test(rest)).map(([, id]) => id))
  const written = new Set<string>()
  let exported = false
  for (const [, id, rest] of log.matchAll(/^#(\d+) (.*)$/gm)) {
    if (!exportIds.has(id)) continue
    const layer = /^writing layer (sha256:[0-9a-f]{64})/.exec(rest)
    if (layer) written.add(layer[1])
    if (/^DONE\b/.test(rest)) exported = true
  }
  return { steps: titles.size, cachedSteps: cached.size, layersWritten: written.size, exported }
}
