/** A target platform such as linux/arm64 or linux/arm/v7, normalised the way containerd does. */
export interface Platform {
  os: string
  architecture: string
  variant?: string
}

/** Architectures we know how to name, emulate and verify. */
const SUPPORTED: Record<string, { variants: string[]; defaultVariant?: string; qemu: string }> = {
  amd64: { variants: ['v1', 'v2', 'v3', 'v4'], qemu: 'x86_64' },
  arm64: { variants: ['v8'], qemu: 'aarch64' },
  arm: { variants: ['v5', 'v6', 'v7'], defaultVariant: 'v7', qemu: 'arm' },
  '386': { variants: [], qemu: 'i386' },
  ppc64le: { variants: [], qemu: 'ppc64le' },
  s390x: { variants: [], qemu: 's390x' },
  riscv64: { variants: [], qemu: 'riscv64' }
}

/** Parses `os/arch[/variant]`; returns an error message instead of throwing so callers can name the input. */
export function parsePlatform(text: string): Platform | string {
  const parts = text.trim().split('/')
  if (parts.length < 2 || parts.length > 3 || parts.some((p) => p === '')) {
    return `'${text}' is not of the form os/arch[/variant], e.g. linux/amd64 or linux/arm/v7`
  }
  const [os, architecture, variant] = parts
  if (os !== 'linux') return `'${text}' targets ${os}; only linux platforms are supported`
  const known = SUPPORTED[architecture]
  if (!known) {
    return `'${text}' has an unsupported architecture; use one of ${Object.keys(SUPPORTED)
      .map((a) => `linux/${a}`)
      .join(', ')}`
  }
  if (variant !== undefined && !known.variants.includes(variant)) {
    return `'${text}' has an unknown variant for ${architecture}` + (known.variants.length ? ` (one of ${known.variants.join(', ')})` : ' (it takes none)')
  }
  return normalizePlatform({ os, architecture, variant })
}

/** arm64/v8 is plain arm64, arm without a variant is arm/v7, amd64/v1 is plain amd64. */
export function normalizePlatform(p: Platform): Platform {
  let variant = p.variant || undefined
  if (p.architecture === 'arm64' && variant === 'v8') variant = undefined
  if (p.architecture === 'amd64' && variant === 'v1') variant = undefined
  if (p.architecture === 'arm' && !variant) variant = SUPPORTED.arm.defaultVariant
  return variant ? { os: p.os, architecture: p.architecture, variant } : { os: p.os, architecture: p.architecture }
}

export function formatPlatform(p: Platform): string {
  return [p.os, p.architecture, p.variant].filter(Boolean).join('/')
}

export function samePlatform(a: Platform, b: Platform): boolean {
  return formatPlatform(normalizePlatform(a)) === formatPlatform(normalizePlatform(b))
}

/** The suffix of the per-arch tag: amd64, arm64, arm-v7. */
export function archTag(p: Platform): string {
  return [p.architecture, p.variant].filter(Boolean).join('-')
}

/** Name of the binfmt_misc entry (and tonistiigi/binfmt install target) that emulates this platform. */
export function qemuName(p: Platform): string {
  return SUPPORTED[p.architecture].qemu
}

/** Architectures a runner executes without emulation, from Node's process.arch. */
export function nativeArchitectures(nodeArch: string): string[] {
  switch (nodeArch) {
    case 'x64':
      return ['amd64', '386']
    case 'arm64':
      return ['arm64']
    case 'arm':
      return ['arm']
    default:
      return [nodeArch]
  }
}
