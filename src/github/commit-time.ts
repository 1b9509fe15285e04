import { startProcess } from '../runtime/process.js'

/**
 * When `sha` was committed (its committer time, ISO 8601), as the git checkout under `dir` has it;
 * undefined when there is no git, no checkout there, or the commit is not in it. A shallow
 * checkout of the commit has it: the time is part of the commit object.
 */
export async function gitCommitTime(dir: string, sha: string): Promise<string | undefined> {
  if (!/^[0-9a-f]{7,64}$/i.test(sha)) return undefined
  const result = await startProcess('git', ['-C', dir, 'show', '--no-patch', '--format=%ct', `${sha}^{commit}`]).done
  const seconds = /^(\d+)\s*$/.exec(result.stdout)?.[1]
  return result.code === 0 && seconds ? new Date(Number(seconds) * 1000).toISOString() : undefined
}
