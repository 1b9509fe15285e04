import { archTag, formatPlatform, nativeArchitectures, parsePlatform, qemuName, samePlatform, type Platform } from '../../src/model/platform.js'

describe('platforms', () => {
  it.each([
    ['linux/amd64', 'linux/amd64', 'amd64', 'x86_64'],
    ['linux/arm64', 'linux/arm64', 'arm64', 'aarch64'],
    ['linux/arm64/v8', 'linux/arm64', 'arm64', 'aarch64'],
    ['linux/arm/v7', 'linux/arm/v7', 'arm-v7', 'arm'],
    ['linux/arm/v6', 'linux/arm/v6', 'arm-v6', 'arm'],
    ['linux/amd64/v3', 'linux/amd64/v3', 'amd64-v3', 'x86_64'],
    [' linux/riscv64 ', 'linux/riscv64', 'riscv64', 'riscv64']
  ])('%s is %s, tag %s, emulator %s', (text, normal, tag, qemu) => {
    const p = parsePlatform(text) as Platform
    expect(formatPlatform(p)).toBe(normal)
    expect(archTag(p)).toBe(tag)
    expect(qemuName(p)).toBe(qemu)
  })

  it.each(['linux', 'linux/', '/amd64', 'linux/arm64/v9', 'darwin/arm64', 'linux/mips', 'linux/amd64/v2/x'])('rejects %j', (t) => {
    expect(typeof parsePlatform(t)).toBe('string')
  })

  it('treats arm64 with or without v8, and arm with or without v7, as the same', () => {
    expect(samePlatform({ os: 'linux', architecture: 'arm64', variant: 'v8' }, { os: 'linux', architecture: 'arm64' })).toBe(true)
    expect(samePlatform({ os: 'linux', architecture: 'arm' }, { os: 'linux', architecture: 'arm', variant: 'v7' })).toBe(true)
    expect(samePlatform({ os: 'linux', architecture: 'arm', variant: 'v6' }, { os: 'linux', architecture: 'arm', variant: 'v7' })).toBe(false)
    expect(samePlatform({ os: 'linux', architecture: 'amd64' }, { os: 'linux', architecture: 'arm64' })).toBe(false)
  })

  it('knows which architectures run natively', () => {
    expect(nativeArchitectures('x64')).toEqual(['amd64', '386'])
    expect(nativeArchitectures('arm64')).toEqual(['arm64'])
  })
})
