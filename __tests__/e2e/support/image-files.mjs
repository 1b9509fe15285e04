// Reads one file out of an image in the stack registry: platform manifest -> layers
// (newest first) -> gunzip -> tar. Lets tests check what a RUN step really recorded
// (e.g. `uname -m` under QEMU) without pulling the image into an engine.
import { gunzipSync } from 'node:zlib'
import { registryFetch, registryManifest } from './stack.mjs'

/** Walks a tar archive and returns the content of `wanted` (path without leading slash), or undefined. */
function fileFromTar(tar, wanted) {
  let offset = 0
  while (offset + 512 <= tar.length) {
    const header = tar.subarray(offset, offset + 512)
    if (header.every((b) => b === 0)) break
    const field = (start, length) =>
      header
        .subarray(start, start + length)
        .toString('utf8')
        .replace(/\0.*$/s, '')
    const prefix = field(345, 155)
    const name = (prefix ? `${prefix}/` : '') + field(0, 100)
    const size = parseInt(field(124, 12).trim() || '0', 8)
    const type = field(156, 1)
    const body = offset + 512
    if ((type === '0' || type === '') && name.replace(/^\.?\//, '') === wanted) return tar.subarray(body, body + size).toString('utf8')
    offset = body + Math.ceil(size / 512) * 512
  }
  return undefined
}

/** The image manifest at ref: the ref's own, or an index's first entry that is not an attestation. */
async function imageManifest(repo, ref) {
  const answer = await registryManifest(repo, ref)
  if (answer.status !== 200) throw new Error(`${repo}:${ref}: HTTP ${answer.status}`)
  if (!Array.isArray(answer.manifest.manifests)) return answer.manifest
  return (await registryManifest(repo, answer.manifest.manifests.find((m) => m.platform?.os !== 'unknown').digest)).manifest
}

/**
 * @param {string} repo         e.g. colliery-io/brokkr-agent
 * @param {string} ref          tag or digest of a platform manifest or a one-platform index
 * @param {string} filePath     e.g. /etc/brokkr/uname
 */
export async function readImageFile(repo, ref, filePath) {
  const manifest = await imageManifest(repo, ref)
  for (const layer of [...manifest.layers].reverse()) {
    const blob = Buffer.from(await (await registryFetch(`/v2/${repo}/blobs/${layer.digest}`)).arrayBuffer())
    const content = fileFromTar(layer.mediaType.includes('gzip') ? gunzipSync(blob) : blob, filePath.replace(/^\//, ''))
    if (content !== undefined) return content
  }
  return undefined
}

/** The os/architecture/variant an image config declares. */
export async function imageConfigPlatform(repo, ref) {
  const config = await (await registryFetch(`/v2/${repo}/blobs/${(await imageManifest(repo, ref)).config.digest}`)).json()
  return [config.os, config.architecture, config.variant].filter(Boolean).join('/')
}
