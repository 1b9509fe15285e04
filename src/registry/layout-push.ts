import * as core from '@actions/core'
import { createReadStream, readFileSync, statSync } from 'node:fs'
import { join } from 'node:path'
import { Readable } from 'node:stream'
import { ActionError } from '../model/errors.js'
import { isIndex, type Descriptor } from '../model/oci.js'
import type { RegistryClient } from './client.js'

/** at most this many blob uploads at once */
const UPLOAD_CONCURRENCY = 4

/**
 * Pushes what BuildKit exported to an OCI layout directory under one tag: blobs first, then
 * manifests by digest, the tag last, so the tag never points at something incomplete. Every
 * request is retried on its own by the client (BuildKit's own push gives up a whole push on one
 * 5xx). Then reads the tag back: it must be what was pushed. Returns the digest it points at.
 */
export async function pushLayout(client: RegistryClient, layoutDir: string, tag: string): Promise<string> {
  const blobPath = (digest: string) => join(layoutDir, 'blobs', ...digest.split(':'))
  const read = (digest: string) => readFileSync(blobPath(digest))
  let uploaded = 0
  let present = 0

  async function pushBlob(d: Descriptor): Promise<void> {
    if (await client.hasBlob(d.digest)) {
      present++
      return
    }
    const size = statSync(blobPath(d.digest)).size
    await client.uploadBlob(d.digest, size, () => Readable.toWeb(createReadStream(blobPath(d.digest))) as ReadableStream)
    uploaded++
  }

  async function pushManifest(d: Descriptor, reference: string): Promise<void> {
    const body = read(d.digest)
    const json = JSON.parse(body.toString('utf8'))
    if (isIndex({ mediaType: d.mediaType ?? '', json })) {
      for (const child of json.manifests as Descriptor[]) await pushManifest(child, child.digest)
    } else {
      await inBatches([json.config as Descriptor, ...(json.layers as Descriptor[])], UPLOAD_CONCURRENCY, pushBlob)
    }
    await client.putManifest(reference, d.mediaType ?? json.mediaType, body)
  }

  const layout = JSON.parse(readFileSync(join(layoutDir, 'index.json'), 'utf8'))
  const top = layout.manifests?.[0] as Descriptor | undefined
  if (!top) throw new Error(`the OCI layout in ${layoutDir} holds no image`)
  await pushManifest(top, tag)
  core.info(`pushed ${client.image}:${tag}@${top.digest} (${uploaded} blobs uploaded, ${present} already there)`)
  const back = await client.readBack(tag)
  if (back.digest !== top.digest) throw new ActionError(`${client.image}:${tag} reads back as ${back.digest}, not the pushed ${top.digest}`)
  return top.digest
}

async function inBatches<T>(items: T[], size: number, fn: (item: T) => Promise<void>): Promise<void> {
  for (let i = 0; i < items.length; i += size) await Promise.all(items.slice(i, i + size).map(fn))
}
