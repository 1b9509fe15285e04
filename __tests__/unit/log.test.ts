import * as core from '@actions/core'
import { group } from '../../src/runtime/log.js'

describe('group', () => {
  const original = process.stdout.write
  let out = ''
  beforeEach(() => {
    out = ''
    process.stdout.write = ((chunk: unknown) => {
      out += String(chunk)
      return true
    }) as typeof process.stdout.write
  })
  afterEach(() => {
    process.stdout.write = original
  })

  it('opens and closes the group around fn and returns its value', async () => {
    expect(await group('Plan', () => 42)).toBe(42)
    expect(out).toBe('::group::Plan\n::endgroup::\n')
  })

  it('closes the group when fn throws, so the error lands outside it', async () => {
    await expect(
      group('Build', async () => {
        core.info('building')
        throw new Error('boom')
      })
    ).rejects.toThrow('boom')
    expect(out).toBe('::group::Build\nbuilding\n::endgroup::\n')
  })
})
