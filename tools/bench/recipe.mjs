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

const SETUP_BUILDX_DEFAULT_FLAGS = '--allow-insecure-entitlement security.insecure --allow-insecure-entitlement network.host'

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
 * build-push-action's argv for one platform of the recipe: `cacheFrom`/`cacheTo` from recipeCache,
 * `tmp` its temp dir (iidfile, metadata-file), `runUrl` `${server}/${repo}/actions/runs/${run id}`
 * (the builder-id), `push` a boolean, `buildArgs` and `labels` lists.
 */
export function buildPushArgv({ buildArgs, cacheFrom, cacheTo, file, tmp, labels, image, push, platform, runUrl, context }) {
  return [
    ...['buildx', 'build', ...buildArgs.flatMap((a) => ['--build-arg', a]), '--cache-from', cacheFrom, '--cache-to', cacheTo, '--file', file],
    ...['--iidfile', `${tmp}/iidfile`, ...labels.flatMap((l) => ['--label', l])],
    ...['--output', `type=image,name=${image},push-by-digest=true,name-canonical=true,push=${push}`, '--platform', platform],
    ...['--attest', `type=provenance,mode=max,builder-id=${runUrl}`, '--metadata-file', `${tmp}/metadata-file`, context]
  ]
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
