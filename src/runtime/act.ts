import { ghaCacheAvailable } from '../build/cache.js'

/**
 * act (nektos/act) sets ACT=true. Said once at the start, so a local run explains itself instead
 * of failing or silently doing less: where the cache goes, which arch builds natively, and what
 * pushing needs there.
 */
export function actNotice(env: NodeJS.ProcessEnv, arch: string): string | undefined {
  if (!env.ACT) return undefined
  const cache = ghaCacheAvailable(env) ? "cache: gha goes to act's cache server" : 'cache: gha is off (act was started with --no-cache-server)'
  const machine = arch === 'arm64' ? 'arm64' : arch === 'x64' ? 'amd64' : arch
  return `Running under act: ${cache}; every platform builds on this ${machine} machine (the others under QEMU, as there are no native arm runners); pushing needs a registry this job can log in to (GITHUB_TOKEN only with -s GITHUB_TOKEN)`
}
