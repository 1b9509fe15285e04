import { classifyDockerOutput, type Outcome } from './retry.js'

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
