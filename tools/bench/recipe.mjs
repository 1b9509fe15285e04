// Docker's documented recipe "distribute build across multiple runners", as the commands its
// actions run with their defaults (read from the sources of docker/setup-buildx-action,
// docker/build-push-action and docker/actions-toolkit):
//
//   setup-buildx-action (driver docker-container, no name -> builder-<uuid>, use: true,
//   buildkitd-flags empty -> its default flags):
//     docker buildx create --name builder-<uuid> --driver docker-container
//       --buildkitd-flags '--allow-insecure-entitlement security.insecure --allow-insecure-entitlement network.host' --use
//     docker buildx inspect --bootstrap --builder builder-<uuid>
//     post (cleanup: true, keep-state: false): docker buildx rm builder-<uuid>
//   build-push-action (getBuildArgs, then getCommonArgs, then the context; no `builder` input, so no
//   --builder: the builder setup-buildx made current is used; provenance left empty on a public
//   repository -> --attest type=provenance,mode=max,builder-id=<run url>; `outputs` given, so
//   --iidfile and no --push):
//     docker buildx build --build-arg ... --cache-from <from> --cache-to <to> --file <file>
//       --iidfile <tmp>/iidfile --label ... --output type=image,name=<image>,push-by-digest=true,name-canonical=true,push=<bool>
//       --platform <platform> --attest type=provenance,mode=max,builder-id=<run url> --metadata-file <tmp>/metadata-file <context>
//     with BUILDX_METADATA_WARNINGS=true in its environment
//   merge job: docker buildx imagetools create -t <image>:<tag>... <image>@<digest>...,
//   then docker buildx imagetools inspect <image>:<tag>
//
// login-action runs `docker login <registry> --username <u> --password-stdin` and, in its post
// step, `docker logout <registry>`.

import { randomUUID } from 'node:crypto'

export const SETUP_BUILDX_DEFAULT_FLAGS = '--allow-insecure-entitlement security.insecure --allow-insecure-entitlement network.host'

export function recipeBuilderName() {
  return `builder-${randomUUID()}`
}

/** setup-buildx-action's main step. */
export function setupBuildxArgv(name) {
  return [
    ['buildx', 'create', '--name', name, '--driver', 'docker-container', '--buildkitd-flags', SETUP_BUILDX_DEFAULT_FLAGS, '--use'],
    ['buildx', 'inspect', '--bootstrap', '--builder', name]
  ]
}

/** setup-buildx-action's post step. */
export function removeBuilderArgv(name) {
  return ['buildx', 'rm', name]
}

/**
 * build-push-action's argv for one platform of the recipe.
 * @param {object} o
 * @param {string[]} o.buildArgs
 * @param {string} o.cacheFrom     e.g. `type=gha` (B) or `type=gha,scope=broker-arm64` (C)
 * @param {string} o.cacheTo       e.g. `type=gha,mode=max` (B) or `type=gha,scope=broker-arm64,mode=max` (C)
 * @param {string} o.file
 * @param {string} o.tmp           build-push-action's temp dir (iidfile, metadata-file)
 * @param {string[]} o.labels
 * @param {string} o.image
 * @param {boolean} o.push
 * @param {string} o.platform
 * @param {string} o.runUrl        `${server}/${repo}/actions/runs/${run id}` (the builder-id)
 * @param {string} o.context
 */
export function buildPushArgv(o) {
  const argv = ['buildx', 'build']
  for (const a of o.buildArgs) argv.push('--build-arg', a)
  argv.push('--cache-from', o.cacheFrom, '--cache-to', o.cacheTo)
  argv.push('--file', o.file)
  argv.push('--iidfile', `${o.tmp}/iidfile`)
  for (const l of o.labels) argv.push('--label', l)
  argv.push('--output', `type=image,name=${o.image},push-by-digest=true,name-canonical=true,push=${o.push}`)
  argv.push('--platform', o.platform)
  argv.push('--attest', `type=provenance,mode=max,builder-id=${o.runUrl}`)
  argv.push('--metadata-file', `${o.tmp}/metadata-file`)
  argv.push(o.context)
  return argv
}

/** The recipe's merge step. */
export function imagetoolsCreateArgv(image, tags, digests) {
  return ['buildx', 'imagetools', 'create', ...tags.flatMap((t) => ['-t', `${image}:${t}`]), ...digests.map((d) => `${image}@${d}`)]
}

export function imagetoolsInspectArgv(image, tag) {
  return ['buildx', 'imagetools', 'inspect', `${image}:${tag}`]
}

/** Cache attributes of variant B (the recipe's defaults) and C (a scope per component and platform). */
export function recipeCache(variant, component, arch) {
  if (variant === 'B') return { from: 'type=gha', to: 'type=gha,mode=max' }
  return { from: `type=gha,scope=${component}-${arch}`, to: `type=gha,scope=${component}-${arch},mode=max` }
}
