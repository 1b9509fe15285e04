import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { describePublishCheck, publishCheckSkipped, runPublishCheck } from '../../src/registry/publish-check.js'
import { retryPolicy } from '../../src/registry/retry.js'
import { configWith } from './helpers.js'

describe('publish check', () => {
  it.each([
    [{ enabled: false, push: true, dryRun: false }, 'publish-check: false'],
    [{ enabled: true, push: false, dryRun: false }, 'not pushing'],
    [{ enabled: true, push: true, dryRun: true }, 'dry-run'],
    [{ enabled: true, push: true, dryRun: false }, undefined]
  ])('%j is skipped for: %s', (o, reason) => {
    expect(publishCheckSkipped(o)).toBe(reason)
  })

  it('is skipped, without asking the registry, when docker holds a login the action cannot read', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'brokkr-docker-config-'))
    try {
      const config = configWith({ password: '', image: 'ghcr.io/colliery-io/brokkr-agent' })
      const check = await runPublishCheck(config, undefined, { DOCKER_CONFIG: dir }, retryPolicy(config))
      expect(check).toEqual({ kind: 'skipped', reason: 'no credentials the action can read; the push uses docker login' })
      expect(describePublishCheck(check)).toMatch(/^skipped \(/)
    } finally {
      rmSync(dir, { recursive: true, force: true })
    }
  })
})
