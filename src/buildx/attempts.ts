import { classifyDockerOutput, type Outcome } from '../model/errors.js'
import { classifyBuildFailure, failedWhilePushing } from './buildkit-log.js'
import type { BuildOutput } from './argv.js'

/** How one `docker buildx build` runs: where its result goes and whether it exports cache. */
export interface Attempt {
  output: BuildOutput
  exportCache: boolean
  /** false once reading the cache stalled past cache-timeout (or when there is nothing to read) */
  readCache: boolean
  /** false once the engine refused an OCI layout: never ask for one again */
  layoutAllowed: boolean
  /** where a layout goes when BuildKit's own push fails */
  layoutDir: string
  /** what this attempt changes from the one before, said in the retry line */
  change?: AttemptChange
}

export type AttemptChange = 'layout' | 'no-cache-export' | 'no-cache-read' | 'push-again' | 'again'

/** The final outcome when no other attempt can help. */
export interface FinalOutcome {
  final: Outcome
}

export interface BuildFailure {
  /** the whole output of the failed build */
  log: string
  /** its last error lines */
  errorText: string
}

export function firstAttempt(push: boolean, layoutDir: string): Attempt {
  return { output: push ? { kind: 'push' } : { kind: 'none' }, exportCache: true, readCache: true, layoutAllowed: true, layoutDir }
}

/** An attempt's shape names its argv in the plan: where the result goes, and whether cache is exported and read. */
export type AttemptShape = `${BuildOutput['kind']}${'' | ', no cache export'}${'' | ', no cache read'}`

export type ShapeOf = Pick<Attempt, 'output' | 'exportCache' | 'readCache'>

export function shapeOf(attempt: ShapeOf): AttemptShape {
  return `${attempt.output.kind}${attempt.exportCache ? '' : ', no cache export'}${attempt.readCache ? '' : ', no cache read'}`
}

/**
 * Every shape a run can reach from its first attempt (see nextAttempt and withoutCacheRead), first
 * attempt first; those without a cache read only when there is a cache to read.
 */
export function reachableAttempts(first: Attempt, readsCache: boolean): ShapeOf[] {
  const outputs: BuildOutput[] = first.output.kind === 'push' ? [first.output, { kind: 'layout', dir: first.layoutDir }] : [first.output]
  const reads = readsCache ? [true, false] : [true]
  return reads.flatMap((readCache) => [true, false].flatMap((exportCache) => outputs.map((output) => ({ output, exportCache, readCache }))))
}

/** The attempt after one whose cache read stalled past cache-timeout: the same, without reading the cache. */
export function withoutCacheRead(previous: Attempt): Attempt {
  return { ...previous, readCache: false, change: 'no-cache-read' }
}

/** What the engine may refuse: the docker driver on the classic image store exports neither cache nor layouts. */
const NO_CACHE_EXPORT = /cache export is not supported/i
const NO_LAYOUT_EXPORT = /oci exporter is not supported|exporter "?oci"? is not supported|not supported for the docker driver/i

/**
 * The attempt after a failed one, or the outcome when retrying is pointless. BuildKit's own push
 * comes first; when the registry fails it mid-push, the next try exports an OCI layout instead,
 * for our request-by-request pusher. An engine that cannot export cache or layouts is met
 * halfway rather than failed. Pure: whether another try is left is the retry policy's business.
 */
export function nextAttempt(previous: Attempt, failure: BuildFailure): Attempt | FinalOutcome {
  const { log, errorText } = failure
  const base: Attempt = {
    output: previous.output,
    exportCache: previous.exportCache,
    readCache: previous.readCache,
    layoutAllowed: previous.layoutAllowed,
    layoutDir: previous.layoutDir
  }
  // a refused push stays refused whichever way we push
  if (classifyDockerOutput(errorText) === 'auth') return { final: 'auth' }
  if (previous.exportCache && NO_CACHE_EXPORT.test(errorText)) return { ...base, exportCache: false, change: 'no-cache-export' }
  if (previous.output.kind === 'layout' && NO_LAYOUT_EXPORT.test(errorText)) {
    return { ...base, output: { kind: 'push' }, layoutAllowed: false, change: 'push-again' }
  }
  if (previous.output.kind === 'push' && previous.layoutAllowed && failedWhilePushing(log, errorText)) {
    return { ...base, output: { kind: 'layout', dir: previous.layoutDir }, change: 'layout' }
  }
  const outcome = classifyBuildFailure(log, errorText)
  return outcome === 'transient' ? { ...base, change: 'again' } : { final: outcome }
}

export function isFinal(next: Attempt | FinalOutcome): next is FinalOutcome {
  return 'final' in next
}

/** Said after the retry line, so the log tells why the next try differs. */
export const CHANGE_NOTES: Record<AttemptChange, string> = {
  layout: 'exporting an OCI layout to push request by request',
  'no-cache-export': 'this engine cannot export build cache (docker driver on the classic image store): building without --cache-to',
  'no-cache-read':
    'reading the build cache made no progress within cache-timeout: building again without it (no --cache-from, --no-cache), on a fresh builder unless the driver is remote',
  'push-again': 'this engine cannot export an OCI layout: pushing with BuildKit again',
  again: 'layers come from cache'
}
