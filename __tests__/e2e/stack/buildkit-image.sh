#!/usr/bin/env bash
# Build (once) and cache a BuildKit image for buildx's docker-container driver, from Debian
# sid's source packages, because moby/buildkit:buildx-stable-1 cannot be pulled here.
#
#   buildkit-image.sh ensure   make sure $CACHE/buildkit/image.tar and versions.env are current
#   buildkit-image.sh clean    unmount, stop what runs in our chroot, delete $CACHE/buildkit
#
# $CACHE = ${BROKKR_STACK_CACHE:-/var/cache/brokkr-stack}. Output:
#   $CACHE/buildkit/image.tar     docker-archive (manifest.json + repositories), one layer,
#                                 tagged moby/buildkit:buildx-stable-1: `docker load -i` it
#   $CACHE/buildkit/versions.env  KEY=value lines (BUILDKIT_VERSION, BUILDKIT_SOURCE_PACKAGE,
#                                 RUNC_VERSION, RUNC_SOURCE_PACKAGE, GO_VERSION, ...)
# Nothing goes to stdout; progress goes to stderr with a [buildkit] prefix, tool output to
# $CACHE/buildkit/logs/.
#
# Recipe: debootstrap a sid minbase chroot ($CACHE/buildkit/chroot, kept: a version bump then
# costs an apt upgrade and an incremental compile), install golang-go +
# golang-github-docker-docker-dev (BuildKit's source) + the -dev packages it needs, take the
# two unpackaged modules from docker.io's .orig.tar.xz, build static buildkitd/buildctl
# (CGO off) and a static runc (cgo + libseccomp), and assemble a FROM-scratch image tar
# ourselves (no engine needed).
#
# Cache key: recipe revision + the installed versions of golang-github-docker-docker-dev and
# golang-github-opencontainers-runc-dev. The archive is asked (private apt lists, no change
# to the machine's apt state) at most every $BROKKR_BUILDKIT_RECHECK seconds (default
# 86400; 0 = every call); in between, `ensure` with a complete cache touches no network.
# If the archive cannot be reached and an image exists, that image is reused with a warning.
#
# Knobs: BROKKR_BUILDKIT_RECHECK (seconds), BROKKR_BUILDKIT_KEEP_CHROOT=0 (delete the ~5 GB
# chroot after a successful build; the ~0.5 GB of .debs stay cached, but a rebuild is then
# nearly a cold one, ~3 min, instead of ~15 s with the chroot and its Go build cache).
#
# Timings (2 cores, Debian 12 host): cold ~3.2 min (debootstrap 25 s, apt 70 s, Go 90 s);
# cached: ~10 ms; cached but due for the archive check: ~3 s. Same inputs give a
# byte-identical image.tar. Interrupted runs (even SIGKILL) are cleaned up by the next run:
# every step runs in a session recorded in $CACHE/buildkit/.running, the chroot is built as
# chroot.tmp and renamed, outputs are written as *.tmp and renamed, and the key goes last.
set -euo pipefail

CACHE=${BROKKR_STACK_CACHE:-/var/cache/brokkr-stack}
BK=$CACHE/buildkit
CHROOT=$BK/chroot
DEBS=$BK/debs                       # .deb cache shared by debootstrap and the chroot's apt
APTDIR=$BK/apt                      # private apt state for the version check (host side)
LOGS=$BK/logs
IMAGE_TAR=$BK/image.tar
VERSIONS=$BK/versions.env
KEYFILE=$BK/key
CHECKED=$BK/checked                 # epoch of the last successful archive check
LOCKFILE=$CACHE/.buildkit-image.lock # outside $BK, so `clean` can hold it while deleting $BK
RUNFILE=$BK/.running                # "PID STARTTIME" of the session running a step now
IMAGE_REF=moby/buildkit:buildx-stable-1
RECIPE=1                            # bump when the recipe changes: forces a rebuild
SUITE=sid
RECHECK=${BROKKR_BUILDKIT_RECHECK:-86400}
OFFLINE_RETRY=600                   # archive unreachable, cached image reused: ask again after 10 min
KEEP_CHROOT=${BROKKR_BUILDKIT_KEEP_CHROOT:-1}
DEBIAN_SOURCES=/etc/apt/sources.list.d/debian.sources
KEYRING=/usr/share/keyrings/debian-archive-keyring.gpg

DOCKER_DEV=golang-github-docker-docker-dev
RUNC_DEV=golang-github-opencontainers-runc-dev
# Toolchain and the sources we build.
BASE_PKGS=(golang-go "$DOCKER_DEV" "$RUNC_DEV" libseccomp-dev gcc libc6-dev pkgconf ca-certificates)
# -dev packages BuildKit's cmd/buildkitd and cmd/buildctl import that golang-github-docker-docker-dev
# does not pull in (sid, Nov 2026). More are found from the compiler's "cannot find package"
# errors and the archive's Contents-all index if sid changes.
EXTRA_PKGS=(
  golang-github-agext-levenshtein-dev
  golang-github-azure-azure-sdk-for-go-dev
  golang-github-containerd-accelerated-container-image-dev
  golang-github-dimchansky-utfbom-dev
  golang-github-gofrs-flock-dev
  golang-github-google-shlex-dev
  golang-github-hashicorp-go-immutable-radix-v2-dev
  golang-github-package-url-packageurl-go-dev
  golang-github-pkg-profile-dev
  golang-github-spdx-tools-golang-dev
  golang-github-tonistiigi-go-archvariant-dev
  golang-github-coreos-go-systemd-dev
)
# Not packaged in Debian: taken from engine/vendor/ of docker.io's .orig.tar.xz.
VENDORED=(github.com/moby/profiles/seccomp github.com/tonistiigi/go-actions-cache)
# Imports of cmd/buildkitd/main_oci_worker.go that do not compile against sid: patched out.
DROPPED_IMPORTS='github.com/containerd/(fuse-overlayfs-snapshotter|stargz-snapshotter)'

IN_CHROOT=(chroot "$CHROOT" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/root LANG=C.UTF-8
  DEBIAN_FRONTEND=noninteractive)
CHILD=
T0=$SECONDS

log() { printf '[buildkit] %s\n' "$*" >&2; }
warn() { printf '[buildkit] WARNING: %s\n' "$*" >&2; }
die() { printf '[buildkit] ERROR: %s\n' "$*" >&2; exit 1; }
now() { printf '%(%s)T\n' -1; }

# ------------------------------------------------------------------ processes and mounts
# Run a command in a session of its own, in the background, output to LOG, and wait for
# it: `wait` returns at once when we get a signal, so the traps run without waiting for the
# child. The session's leader and start time go to $RUNFILE, so that the next run can stop
# what a SIGKILLed run left behind. The child does not inherit the lock (fd 9).
# `run_logged LOG in_chroot CMD...` runs CMD in the chroot.
run_logged() { # LOG CMD...
  local logf=$1 rc=0 st
  shift
  if [[ $1 == in_chroot ]]; then
    shift
    set -- "${IN_CHROOT[@]}" "$@"
  fi
  echo "=== $(date -Is) $*" >>"$logf"
  setsid -w "$@" </dev/null >>"$logf" 2>&1 9>&- &
  CHILD=$!
  if st=$(proc_start "$CHILD"); then echo "$CHILD $st" >"$RUNFILE"; fi
  wait "$CHILD" || rc=$?
  CHILD=
  rm -f "$RUNFILE"
  return "$rc"
}

proc_start() { # PID: start time (field 22 of /proc/PID/stat)
  local st
  read -r st 2>/dev/null <"/proc/$1/stat" || return 1
  st=${st##*) }
  set -- $st
  echo "${20}"
}

session_pids() { # SID: the processes of that session
  local p st
  for p in /proc/[0-9]*/stat; do
    read -r st 2>/dev/null <"$p" || continue
    st=${st##*) } # "STATE PPID PGRP SESSION ..."
    st=${st#* }
    st=${st#* }
    st=${st#* }
    [[ ${st%% *} == "$1" ]] && echo "${p:6:-5}"
  done
  return 0
}

chroot_pids() { # processes whose root directory is inside $BK (our chroots)
  local p r
  for p in /proc/[0-9]*; do
    r=$(readlink "$p/root" 2>/dev/null) || continue
    [[ $r == "$BK"/* ]] && echo "${p#/proc/}"
  done
  return 0
}

stop_pids() { # PID...: TERM, up to 5 s, KILL
  (($#)) || return 0
  local i p alive
  kill -TERM "$@" 2>/dev/null || true
  for ((i = 0; i < 50; i++)); do
    alive=0
    for p in "$@"; do [[ -e /proc/$p ]] && alive=1; done
    ((alive)) || return 0
    sleep 0.1
  done
  kill -KILL "$@" 2>/dev/null || true
}

stop_everything() {
  local pids=() pid st
  if [[ -n $CHILD ]]; then
    mapfile -t pids < <(session_pids "$CHILD")
    CHILD=
  fi
  # the session of a run that was killed with SIGKILL
  if [[ -s $RUNFILE ]] && read -r pid st <"$RUNFILE" && [[ "$(proc_start "$pid" || true)" == "$st" ]]; then
    mapfile -t -O "${#pids[@]}" pids < <(session_pids "$pid")
  fi
  rm -f "$RUNFILE"
  mapfile -t -O "${#pids[@]}" pids < <(chroot_pids)
  ((${#pids[@]})) && mapfile -t pids < <(printf '%s\n' "${pids[@]}" | sort -un)
  if ((${#pids[@]})); then
    log "stopping ${#pids[@]} leftover process(es)"
    stop_pids "${pids[@]}"
  fi
}

mounts_under() { # DIR: mount points at or below DIR, deepest first
  awk -v d="$1" '{ m = $5; gsub(/\\040/, " ", m); if (m == d || index(m, d "/") == 1) print m }' \
    /proc/self/mountinfo | sort -r
}

unmount_under() { # DIR
  local mp
  while IFS= read -r mp; do
    [[ -n $mp ]] || continue
    umount "$mp" 2>/dev/null || umount -l "$mp" 2>/dev/null || warn "could not unmount $mp"
  done < <(mounts_under "$1")
  [[ -z "$(mounts_under "$1")" ]]
}

safe_rm() { # DIR: unmount what is below it first, never cross into another file system
  [[ -e $1 ]] || return 0
  unmount_under "$1" || die "mounts remain under $1; not deleting it"
  rm -rf --one-file-system "$1"
}

is_mounted() { [[ -n "$(awk -v d="$1" '$5 == d' /proc/self/mountinfo)" ]]; }

cleanup() {
  local rc=$?
  set +e
  trap - EXIT INT TERM
  stop_everything
  unmount_under "$BK" 2>/dev/null
  if ((rc != 0)); then log "failed (exit $rc) after $((SECONDS - T0)) s; logs in $LOGS"; fi
  exit "$rc"
}

lock() {
  mkdir -p "$CACHE"
  exec 9>"$LOCKFILE"
  if ! flock -n 9; then
    log "another buildkit-image.sh holds $LOCKFILE; waiting"
    flock 9
  fi
}

# ------------------------------------------------------------------ cache state
fresh() { # the image and its versions exist, were made by this recipe and checked recently
  [[ -s $IMAGE_TAR && -s $VERSIONS && -s $KEYFILE && -s $CHECKED ]] || return 1
  local key='' t=''
  read -r key <"$KEYFILE" || [[ -n $key ]] || return 1
  [[ $key == "recipe=$RECIPE "* ]] || return 1
  ((RECHECK > 0)) || return 1
  read -r t <"$CHECKED" || [[ -n $t ]] || return 1
  [[ $t =~ ^[0-9]+$ ]] || return 1
  (($(now) - t < RECHECK))
}

have_image() {
  [[ -s $IMAGE_TAR && -s $VERSIONS && -s $KEYFILE ]] && [[ "$(cat "$KEYFILE")" == "recipe=$RECIPE "* ]]
}

print_versions() {
  local k v
  local -A V=()
  while IFS='=' read -r k v; do [[ -n $k ]] && V[$k]=$v; done <"$VERSIONS"
  log "$IMAGE_REF: BuildKit ${V[BUILDKIT_VERSION]:-?} ($DOCKER_DEV ${V[BUILDKIT_SOURCE_PACKAGE]:-?}), runc ${V[RUNC_VERSION]:-?} ($RUNC_DEV ${V[RUNC_SOURCE_PACKAGE]:-?}), ${V[GO_VERSION]:-}"
  log "image: $IMAGE_TAR"
}

# ------------------------------------------------------------------ private apt (host side)
debian_uri() {
  local u
  u=$(awk '/^URIs:/{for (i = 2; i <= NF; i++) if ($i !~ /security/) {print $i; exit}}' "$DEBIAN_SOURCES" 2>/dev/null || true)
  [[ -n $u ]] || die "no URIs: line in $DEBIAN_SOURCES"
  echo "${u%/}"
}

papt_opts() {
  local d=$APTDIR
  printf '%s\n' -o "Dir::State::Lists=$d/lists" -o "Dir::Cache=$d/cache" \
    -o Dir::Cache::pkgcache= -o Dir::Cache::srcpkgcache= \
    -o "Dir::Etc::SourceList=$d/sources.list" -o "Dir::Etc::SourceParts=$d/parts" \
    -o "Dir::State::status=$d/status" -o APT::Sandbox::User=root \
    -o "APT::Architecture=$HOST_ARCH" -o "APT::Architectures=$HOST_ARCH" \
    -o Acquire::Languages=none -o Acquire::Check-Valid-Until=false -o Acquire::Check-Date=false
}

# Ask the archive which versions sid serves now: sets ARCHIVE_KEY, or returns 1.
archive_check() {
  local d=$APTDIR out
  local -a o
  mkdir -p "$d/lists/partial" "$d/cache/archives/partial" "$d/parts"
  : >"$d/sources.list"
  [[ -f $d/status ]] || : >"$d/status"
  printf 'Types: deb\nURIs: %s\nSuites: %s\nComponents: main\nSigned-By: %s\n' \
    "$URI" "$SUITE" "$KEYRING" >"$d/parts/sid.sources"
  mapfile -t o < <(papt_opts)
  out=$(timeout 120 apt-get -q "${o[@]}" -o Acquire::http::Timeout=15 -o Acquire::Retries=1 update 2>&1) || {
    printf '%s\n' "$out" >>"$LOGS/apt-check.log"
    return 1
  }
  printf '%s\n' "$out" >>"$LOGS/apt-check.log"
  if grep -qE 'NO_PUBKEY|not signed|EXPKEYSIG|BADSIG|^Err:|^W: GPG|^E:|^W: Failed' <<<"$out"; then
    return 1
  fi
  local vd vr
  vd=$(apt-cache "${o[@]}" show --no-all-versions "$DOCKER_DEV" 2>/dev/null | awk '!v && /^Version:/ {v = $2} END {print v}') || true
  vr=$(apt-cache "${o[@]}" show --no-all-versions "$RUNC_DEV" 2>/dev/null | awk '!v && /^Version:/ {v = $2} END {print v}') || true
  [[ -n $vd && -n $vr ]] || { warn "$SUITE does not list $DOCKER_DEV and $RUNC_DEV"; return 1; }
  ARCHIVE_KEY=$(make_key "$vd" "$vr")
}

make_key() { echo "recipe=$RECIPE arch=$HOST_ARCH $DOCKER_DEV=$1 $RUNC_DEV=$2"; }

# ------------------------------------------------------------------ chroot
ensure_debootstrap() {
  command -v debootstrap >/dev/null && return 0
  log "apt-get install debootstrap (bookworm)"
  export DEBIAN_FRONTEND=noninteractive
  if ! apt-get install -y -q --no-install-recommends debootstrap >"$LOGS/host-apt.log" 2>&1; then
    apt-get update -q >>"$LOGS/host-apt.log" 2>&1 || true
    apt-get install -y -q --no-install-recommends debootstrap >>"$LOGS/host-apt.log" 2>&1 ||
      die "apt-get install debootstrap failed; see $LOGS/host-apt.log"
  fi
}

in_chroot() { "${IN_CHROOT[@]}" "$@"; } # CMD... in the chroot, with a clean environment

ensure_chroot() {
  [[ -x $CHROOT/usr/bin/apt-get && -f $CHROOT/.brokkr-chroot ]] && return 0
  local t=$SECONDS tmp=$CHROOT.tmp
  safe_rm "$tmp"
  safe_rm "$CHROOT"
  ensure_debootstrap
  mkdir -p "$DEBS"
  log "debootstrap $SUITE (minbase) into $CHROOT (log $LOGS/debootstrap.log)"
  run_logged "$LOGS/debootstrap.log" debootstrap --variant=minbase --keyring="$KEYRING" \
    --cache-dir="$DEBS" --include=ca-certificates "$SUITE" "$tmp" "$URI" ||
    { tail -15 "$LOGS/debootstrap.log" >&2; die "debootstrap failed"; }
  unmount_under "$tmp" || die "debootstrap left mounts under $tmp"
  echo "$SUITE $(date -Is)" >"$tmp/.brokkr-chroot"
  mv "$tmp" "$CHROOT"
  log "chroot ready in $((SECONDS - t)) s"
}

chroot_prepare() { # config files and mounts (unmounted by the EXIT trap)
  local c=$CHROOT
  cat >"$c/etc/apt/apt.conf.d/99brokkr" <<'EOF'
// brokkr buildkit-image.sh: the clock may be ahead of (or behind) sid's Release file
Acquire::Check-Valid-Until "false";
Acquire::Check-Date "false";
Acquire::Languages "none";
APT::Install-Recommends "false";
APT::Install-Suggests "false";
APT::Sandbox::User "root";
EOF
  printf 'deb %s %s main\ndeb-src %s %s main\n' "$URI" "$SUITE" "$URI" "$SUITE" >"$c/etc/apt/sources.list"
  # throwaway build root: no fsync per file, no manuals/locales (saves a good part of the unpack time)
  printf '%s\n' force-unsafe-io path-exclude=/usr/share/man/* path-exclude=/usr/share/locale/* \
    path-exclude=/usr/share/info/* >"$c/etc/dpkg/dpkg.cfg.d/99brokkr"
  printf '#!/bin/sh\n# brokkr buildkit-image.sh: never start services in this chroot\nexit 101\n' >"$c/usr/sbin/policy-rc.d"
  chmod 0755 "$c/usr/sbin/policy-rc.d"
  cp -L /etc/resolv.conf "$c/etc/resolv.conf" 2>/dev/null || true
  cp -L /etc/hosts "$c/etc/hosts" 2>/dev/null || true
  is_mounted "$c/proc" || mount -t proc proc "$c/proc"
  mkdir -p "$DEBS/partial" "$c/var/cache/apt/archives"
  is_mounted "$c/var/cache/apt/archives" || mount --bind "$DEBS" "$c/var/cache/apt/archives"
}

available() { # PKG...: prints those the chroot's apt knows
  local p
  for p in "$@"; do
    if in_chroot apt-cache show --no-all-versions "$p" >/dev/null 2>&1; then echo "$p"; else warn "$p is not in $SUITE; skipped"; fi
  done
}

chroot_install() {
  local t=$SECONDS l=$LOGS/chroot-apt.log pkgs
  log "apt-get update/upgrade/install in the chroot (log $l)"
  run_logged "$l" in_chroot dpkg --configure -a || true
  run_logged "$l" in_chroot apt-get -q update || { tail -15 "$l" >&2; die "apt-get update in the chroot failed"; }
  mapfile -t pkgs < <(available "${EXTRA_PKGS[@]}")
  if ! run_logged "$l" in_chroot apt-get -q -y -f install ||
    ! run_logged "$l" in_chroot apt-get -q -y dist-upgrade ||
    ! run_logged "$l" in_chroot apt-get -q -y install "${BASE_PKGS[@]}" "${pkgs[@]}"; then
    tail -20 "$l" >&2
    die "apt-get in the chroot failed"
  fi
  run_logged "$l" in_chroot apt-get -q autoclean || true
  log "packages ready in $((SECONDS - t)) s"
}

chroot_install_more() { # PKG...
  run_logged "$LOGS/chroot-apt.log" in_chroot apt-get -q -y install "$@" ||
    { tail -20 "$LOGS/chroot-apt.log" >&2; die "apt-get install $* failed"; }
}

pkg_version() { in_chroot dpkg-query -W -f='${Version}' "$1"; }

# docker.io's main .orig.tar.xz (engine/): the unpackaged modules, and BuildKit's version
# (engine/vendor/modules.txt). Its companion tarballs are not needed (some 404 on the mirror).
fetch_orig() {
  local src=$CHROOT/build/src line url name hash
  mkdir -p "$src"
  line=$(in_chroot sh -c 'cd /tmp && apt-get source --print-uris -qq docker.io' 2>>"$LOGS/chroot-apt.log" |
    awk '$2 ~ /^docker\.io_[^_]*\.orig\.tar\.[a-z0-9]+$/ {print; exit}') || true
  [[ -n $line ]] || die "no docker.io .orig tarball in $SUITE's Sources"
  read -r url name _ hash <<<"$line"
  url=${url//\'/}
  [[ $hash == SHA256:* ]] || die "no SHA256 for $name"
  ORIG=$src/$name
  if [[ -s $ORIG ]] && [[ "$(sha256sum "$ORIG" | cut -d' ' -f1)" == "${hash#SHA256:}" ]]; then return 0; fi
  log "downloading $name"
  find "$src" -maxdepth 1 -name 'docker.io_*' -delete
  run_logged "$LOGS/chroot-apt.log" in_chroot /usr/lib/apt/apt-helper download-file "$url" "/build/src/$name" "$hash" ||
    { tail -5 "$LOGS/chroot-apt.log" >&2; die "download of $url failed"; }
}

# ------------------------------------------------------------------ build
prepare_gopath() { # private GOPATH: buildkit (+ one-line go.mod), vendored modules, patch
  local gp=$CHROOT/build/gopath x=$CHROOT/build/orig v top
  safe_rm "$gp"
  safe_rm "$x"
  mkdir -p "$gp/src/github.com/moby" "$x"
  cp -a "$CHROOT/usr/share/gocode/src/github.com/moby/buildkit" "$gp/src/github.com/moby/buildkit"
  echo 'module github.com/moby/buildkit' >"$gp/src/github.com/moby/buildkit/go.mod"
  local -a pats=("*/engine/vendor/modules.txt")
  for v in "${VENDORED[@]}"; do pats+=("*/engine/vendor/$v/*"); done
  tar -xJf "$ORIG" -C "$x" --wildcards "${pats[@]}" || die "cannot extract ${VENDORED[*]} from $ORIG"
  top=$(find "$x" -mindepth 3 -maxdepth 3 -type d -path '*/engine/vendor' | head -1) || true
  [[ -n $top ]] || die "no engine/vendor in $ORIG"
  for v in "${VENDORED[@]}"; do
    [[ -d $top/$v ]] || die "$v not in $ORIG"
    mkdir -p "$gp/src/${v%/*}"
    cp -a "$top/$v" "$gp/src/$v"
  done
  BUILDKIT_VERSION=$(awk '$1 == "#" && $2 == "github.com/moby/buildkit" {print $3; exit}' "$top/modules.txt")
  [[ $BUILDKIT_VERSION =~ ^v[0-9]+\.[0-9]+ ]] || die "BuildKit version not found in engine/vendor/modules.txt"
  patch_oci_worker "$gp/src/github.com/moby/buildkit/cmd/buildkitd/main_oci_worker.go"
}

patch_oci_worker() { # FILE: drop the fuse-overlayfs and stargz snapshotters
  "$PYTHON" - "$1" "$DROPPED_IMPORTS" <<'PY'
import re, sys
path, dropped = sys.argv[1], sys.argv[2]
src = open(path).read()
nb = 'errors.New("%s snapshotter is not built into this buildkitd")'
src = re.sub(r'(?m)^[ \t]*\w*[ \t]*"' + dropped + r'[^"]*"[ \t]*\n', '', src)
src = src.replace('fuseoverlayfs.Supported(commonRoot)', nb % 'fuse-overlayfs')
src = src.replace('return fuseoverlayfs.NewSnapshotter(root)', 'return nil, ' + nb % 'fuse-overlayfs')
m = re.search(r'(?m)^([ \t]*)case "stargz":\n', src)
if m:
    d = src.find('\n' + m.group(1) + 'default:', m.end())
    if d < 0:
        sys.exit('patch: no default: after case "stargz"')
    src = src[:m.end()] + m.group(1) + '\treturn snFactory, ' + nb % 'stargz' + src[d:]
m = re.search(r'(?m)^(//[^\n]*\n)*func sourceWithSession\(', src)
if m:
    e = src.find('\n}\n', m.end())
    if e < 0:
        sys.exit('patch: end of sourceWithSession not found')
    src = src[:m.start()] + src[e + 3:]
if re.search(r'\bfuseoverlayfs\.|\bsgz\w*\.|\bremotesn\.', src):
    sys.exit('patch: references to the fuse-overlayfs/stargz snapshotters remain')
open(path, 'w').write(src)
PY
}

# Contents-all of sid (checksum from the InRelease our private apt verified): import path -> package
resolve_imports() { # IMPORT_PATH... -> package names; unresolvable ones to stderr
  local idx=$BK/gocode-index.txt inrel hash gz=$BK/Contents-all.gz
  if [[ ! -s $idx || $idx -ot $APTDIR/lists ]]; then
    inrel=$(ls "$APTDIR"/lists/*_dists_"$SUITE"_InRelease 2>/dev/null | head -1) || true
    [[ -n $inrel ]] || die "no verified $SUITE InRelease in $APTDIR/lists"
    hash=$(awk '/^SHA256:/{s = 1; next} /^[^ ]/{s = 0} s && $3 == "main/Contents-all.gz" {print $1}' "$inrel")
    [[ -n $hash ]] || die "main/Contents-all.gz not in $inrel"
    log "fetching $SUITE main/Contents-all.gz to map import paths to packages"
    rm -f "$gz"
    /usr/lib/apt/apt-helper download-file "$URI/dists/$SUITE/main/Contents-all.gz" "$gz" "SHA256:$hash" >>"$LOGS/apt-check.log" 2>&1 ||
      die "download of Contents-all.gz failed"
    zcat "$gz" | awk '$1 ~ /^usr\/share\/gocode\/src\// {d = $1; sub(/\/[^\/]*$/, "", d); sub(/^usr\/share\/gocode\/src\//, "", d); n = split($NF, a, "/"); print d, a[n]}' |
      sort -u >"$idx.tmp"
    mv "$idx.tmp" "$idx"
    rm -f "$gz"
  fi
  local p pkg
  for p in "$@"; do
    pkg=$(awk -v d="$p" '$1 == d {print $2; exit}' "$idx")
    if [[ -n $pkg ]]; then echo "$pkg"; else warn "no $SUITE package ships Go package $p"; fi
  done | sort -u
}

# Build with the compiler as the guide: install -dev packages for "cannot find package" and
# drop imports that the patch left unused.
go_build() { # NAME SCRIPT(in chroot) [FILE-WITH-PRUNABLE-IMPORTS]
  local name=$1 script=$2 prune=${3:-} l=$LOGS/build-$1.log round missing lines pkgs
  for round in 1 2 3 4 5 6; do
    : >"$l"
    if run_logged "$l" in_chroot bash "$script"; then return 0; fi
    mapfile -t missing < <(grep -oE 'cannot find package "[^"]+"' "$l" | cut -d'"' -f2 | grep -vE "$DROPPED_IMPORTS" | sort -u)
    if [[ -n $prune ]]; then
      lines=$(grep -oE "^${prune#*/buildkit/}:[0-9]+:[0-9]+: \"[^\"]+\" imported (as [A-Za-z0-9_]+ )?and not used" "$l" |
        cut -d: -f2 | sort -rn | tr '\n' ' ') || true
      if [[ -n ${lines// /} ]]; then
        log "$name: removing imports left unused by the patch (lines $lines)"
        sed -i "$(for n in $lines; do printf '%sd;' "$n"; done)" "$CHROOT$prune"
        continue
      fi
    fi
    if ((${#missing[@]})); then
      mapfile -t pkgs < <(resolve_imports "${missing[@]}")
      ((${#pkgs[@]})) || { grep -m 20 'cannot find package' "$l" >&2; die "$name: missing Go packages that $SUITE does not ship"; }
      log "$name: installing ${pkgs[*]} (the compiler asked for ${#missing[@]} missing package(s))"
      chroot_install_more "${pkgs[@]}"
      continue
    fi
    tail -30 "$l" >&2
    die "$name: go build failed (log $l)"
  done
  die "$name: still failing after $round rounds (log $l)"
}

build_binaries() {
  local t=$SECONDS out=$CHROOT/build/out rev
  safe_rm "$out"
  mkdir -p "$out"
  rev="debian-$BUILDKIT_SOURCE_PACKAGE"
  rev=${rev//[^A-Za-z0-9.+~_-]/_}
  cat >"$CHROOT/build/build-buildkit.sh" <<EOF
set -e
export GOPATH=/build/gopath:/usr/share/gocode GO111MODULE=off GOFLAGS= GOTOOLCHAIN=local GOCACHE=/build/gocache CGO_ENABLED=0
cd /build/gopath/src/github.com/moby/buildkit
go build -trimpath -o /build/out/ -tags "osusergo netgo static_build" \\
  -ldflags "-s -w -X github.com/moby/buildkit/version.Version=$BUILDKIT_VERSION -X github.com/moby/buildkit/version.Revision=$rev -X github.com/moby/buildkit/version.Package=github.com/moby/buildkit" \\
  ./cmd/buildkitd ./cmd/buildctl
EOF
  cat >"$CHROOT/build/build-runc.sh" <<EOF
set -e
export GOPATH=/build/gopath:/usr/share/gocode GO111MODULE=off GOFLAGS= GOTOOLCHAIN=local GOCACHE=/build/gocache CGO_ENABLED=1
cd /usr/share/gocode/src/github.com/opencontainers/runc
go build -trimpath -o /build/out/runc -tags "seccomp urfave_cli_no_docs netgo osusergo" \\
  -ldflags "-s -w -X main.version=$RUNC_VERSION -X main.gitCommit=debian-$RUNC_SOURCE_PACKAGE -extldflags -static" .
EOF
  log "building buildkitd + buildctl $BUILDKIT_VERSION (log $LOGS/build-buildkit.log)"
  go_build buildkit /build/build-buildkit.sh /build/gopath/src/github.com/moby/buildkit/cmd/buildkitd/main_oci_worker.go
  log "building runc $RUNC_VERSION (static, seccomp; log $LOGS/build-runc.log)"
  go_build runc /build/build-runc.sh
  local v
  v=$("$out/buildkitd" --version) || die "buildkitd --version failed"
  read -r -a f <<<"$v"
  ((${#f[@]} == 4)) && [[ ${f[2]} == "$BUILDKIT_VERSION" ]] || die "buildkitd --version is not 'buildkitd PACKAGE VERSION REVISION': $v"
  "$out/buildctl" --version >/dev/null || die "buildctl --version failed"
  local rv
  rv=$("$out/runc" --version) || die "runc --version failed"
  [[ $rv == *"runc version $RUNC_VERSION"* ]] || die "runc --version does not say $RUNC_VERSION: $rv"
  log "binaries built in $((SECONDS - t)) s ($v)"
}

assemble_image() { # -> $IMAGE_TAR.tmp, prints the config digest
  local out=$CHROOT/build/out
  # Timestamps = the newer of the two source packages' changelog dates: the same inputs give
  # a byte-identical image (same image id), so a rebuild does not force reloads.
  local epoch f
  epoch=$(for f in "$DOCKER_DEV" "$RUNC_DEV"; do stat -c %Y "$CHROOT/usr/share/doc/$f/changelog.Debian.gz" 2>/dev/null || echo 0; done | sort -n | tail -1)
  "$PYTHON" - "$IMAGE_TAR.tmp" "$IMAGE_REF" "$HOST_ARCH" "$out" "$CHROOT/etc/ssl/certs/ca-certificates.crt" \
    "$BUILDKIT_VERSION" "$BUILDKIT_SOURCE_PACKAGE" "$RUNC_VERSION" "$RUNC_SOURCE_PACKAGE" "$epoch" <<'PY'
import hashlib, io, json, os, struct, sys, tarfile, tempfile, time
dest, ref, debarch, out, cacert, bkv, bkpkg, runcv, runcpkg, epoch = sys.argv[1:]
goarch, variant = {'amd64': ('amd64', None), 'arm64': ('arm64', 'v8'), 'armhf': ('arm', 'v7'),
                   'i386': ('386', None), 'ppc64el': ('ppc64le', None), 's390x': ('s390x', None),
                   'riscv64': ('riscv64', None)}.get(debarch, (debarch, None))
mtime = int(epoch) if int(epoch) > 0 else int(time.time())
created = time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime(mtime))

def static(path):  # ELF without PT_INTERP
    with open(path, 'rb') as f:
        h = f.read(64)
        if h[:4] != b'\x7fELF' or h[4] != 2:
            return False
        end = '<' if h[5] == 1 else '>'
        phoff, = struct.unpack(end + 'Q', h[32:40])
        phentsize, phnum = struct.unpack(end + 'HH', h[54:58])
        for i in range(phnum):
            f.seek(phoff + i * phentsize)
            if struct.unpack(end + 'I', f.read(4))[0] == 3:
                return False
    return True

for b in ('buildkitd', 'buildctl', 'runc'):
    if not static(os.path.join(out, b)):
        sys.exit('%s is not a static ELF binary' % b)

def info(name, kind=tarfile.DIRTYPE, mode=0o755, size=0, link=''):
    ti = tarfile.TarInfo(name)
    ti.type, ti.mode, ti.size, ti.mtime, ti.linkname = kind, mode, size, mtime, link
    ti.uid = ti.gid = 0
    ti.uname = ti.gname = ''
    return ti

class Sha:  # file wrapper hashing what tarfile writes
    def __init__(self, f): self.f, self.h, self.n = f, hashlib.sha256(), 0
    def write(self, b): self.h.update(b); self.n += len(b); return self.f.write(b)
    def tell(self): return self.n

tmpdir = os.path.dirname(os.path.abspath(dest))
with tempfile.TemporaryFile(dir=tmpdir) as layer:
    w = Sha(layer)
    with tarfile.open(fileobj=w, mode='w', format=tarfile.PAX_FORMAT) as t:
        for d in ('etc/', 'etc/buildkit/', 'etc/ssl/', 'etc/ssl/certs/', 'tmp/', 'usr/', 'usr/bin/',
                  'var/', 'var/lib/', 'var/lib/buildkit/'):
            t.addfile(info(d, mode=0o1777 if d == 'tmp/' else 0o755))
        with open(cacert, 'rb') as f:
            t.addfile(info('etc/ssl/certs/ca-certificates.crt', tarfile.REGTYPE, 0o644, os.path.getsize(cacert)), f)
        for b in ('buildkitd', 'buildctl', 'runc'):
            p = os.path.join(out, b)
            with open(p, 'rb') as f:
                t.addfile(info('usr/bin/' + b, tarfile.REGTYPE, 0o755, os.path.getsize(p)), f)
        t.addfile(info('usr/bin/buildkit-runc', tarfile.LNKTYPE, 0o755, link='usr/bin/runc'))
    diff_id = 'sha256:' + w.h.hexdigest()
    layer_size = w.n
    source = 'Debian %s: %s %s, runc %s' % ('sid', 'golang-github-docker-docker-dev', bkpkg, runcpkg)
    config = {
        'architecture': goarch, 'os': 'linux', 'created': created,
        'config': {
            'Env': ['PATH=/usr/bin:/bin'],
            'Entrypoint': ['buildkitd'],
            'Volumes': {'/var/lib/buildkit': {}},
            'Labels': {
                'org.opencontainers.image.title': 'BuildKit (built from Debian source packages)',
                'org.opencontainers.image.version': bkv,
                'org.opencontainers.image.description': source,
                'dev.brokkr.buildkit.source-package': bkpkg,
                'dev.brokkr.runc.version': runcv,
                'dev.brokkr.runc.source-package': runcpkg,
            },
        },
        'rootfs': {'type': 'layers', 'diff_ids': [diff_id]},
        'history': [{'created': created, 'created_by': 'brokkr __tests__/e2e/stack/buildkit-image.sh (%s)' % source}],
    }
    if variant:
        config['variant'] = variant
    cfg = json.dumps(config, separators=(',', ':'), sort_keys=True).encode()
    cfg_hex = hashlib.sha256(cfg).hexdigest()
    lid = diff_id[7:]
    repo, tag = ref.rsplit(':', 1)
    v1 = json.dumps({'id': lid, 'created': created, 'os': 'linux', 'architecture': goarch,
                     'config': config['config']}, separators=(',', ':')).encode()
    manifest = json.dumps([{'Config': cfg_hex + '.json', 'RepoTags': [ref],
                            'Layers': [lid + '/layer.tar']}], separators=(',', ':')).encode()
    repositories = json.dumps({repo: {tag: lid}}, separators=(',', ':')).encode()
    with open(dest, 'wb') as f, tarfile.open(fileobj=f, mode='w', format=tarfile.PAX_FORMAT) as t:
        t.addfile(info(lid + '/'))
        t.addfile(info(lid + '/VERSION', tarfile.REGTYPE, 0o644, 3), io.BytesIO(b'1.0'))
        t.addfile(info(lid + '/json', tarfile.REGTYPE, 0o644, len(v1)), io.BytesIO(v1))
        layer.seek(0)
        t.addfile(info(lid + '/layer.tar', tarfile.REGTYPE, 0o644, layer_size), layer)
        t.addfile(info(cfg_hex + '.json', tarfile.REGTYPE, 0o644, len(cfg)), io.BytesIO(cfg))
        t.addfile(info('manifest.json', tarfile.REGTYPE, 0o644, len(manifest)), io.BytesIO(manifest))
        t.addfile(info('repositories', tarfile.REGTYPE, 0o644, len(repositories)), io.BytesIO(repositories))
        f.flush()
        os.fsync(f.fileno())
print('sha256:' + cfg_hex)
PY
}

build() {
  local t=$SECONDS id
  mkdir -p "$LOGS"
  rm -f "$KEYFILE" "$IMAGE_TAR.tmp" "$VERSIONS.tmp"
  ensure_chroot
  chroot_prepare
  chroot_install
  BUILDKIT_SOURCE_PACKAGE=$(pkg_version "$DOCKER_DEV")
  RUNC_SOURCE_PACKAGE=$(pkg_version "$RUNC_DEV")
  RUNC_VERSION=$(tr -d ' \n' <"$CHROOT/usr/share/gocode/src/github.com/opencontainers/runc/VERSION" 2>/dev/null || true)
  [[ -n $RUNC_VERSION ]] || RUNC_VERSION=${RUNC_SOURCE_PACKAGE%%+*}
  GO_VERSION=$(in_chroot go env GOVERSION)
  fetch_orig
  prepare_gopath
  build_binaries
  log "assembling $IMAGE_TAR"
  id=$(assemble_image) || die "image assembly failed"
  {
    echo "BUILDKIT_VERSION=$BUILDKIT_VERSION"
    echo "BUILDKIT_SOURCE_PACKAGE=$BUILDKIT_SOURCE_PACKAGE"
    echo "RUNC_VERSION=$RUNC_VERSION"
    echo "RUNC_SOURCE_PACKAGE=$RUNC_SOURCE_PACKAGE"
    echo "GO_VERSION=$GO_VERSION"
    echo "BUILDKIT_IMAGE=$IMAGE_REF"
    echo "BUILDKIT_IMAGE_CONFIG=$id" # config digest (docker image inspect .Id is the manifest digest with the containerd store)
    echo "BUILDKIT_IMAGE_TAR=$IMAGE_TAR"
    echo "BUILDKIT_SUITE=$SUITE"
    echo "BUILDKIT_ARCH=$HOST_ARCH"
    echo "BUILDKIT_BUILT=$(date -u +%Y-%m-%dT%H:%M:%SZ)"
  } >"$VERSIONS.tmp"
  mv "$IMAGE_TAR.tmp" "$IMAGE_TAR"
  mv "$VERSIONS.tmp" "$VERSIONS"
  make_key "$BUILDKIT_SOURCE_PACKAGE" "$RUNC_SOURCE_PACKAGE" >"$KEYFILE"
  now >"$CHECKED"
  safe_rm "$CHROOT/build/orig"
  if [[ $KEEP_CHROOT == 0 ]]; then
    log "dropping the chroot (BROKKR_BUILDKIT_KEEP_CHROOT=0; .debs stay in $DEBS)"
    stop_everything
    safe_rm "$CHROOT"
  fi
  log "built $IMAGE_REF in $((SECONDS - t)) s"
}

# ------------------------------------------------------------------ commands
cmd_ensure() {
  if fresh; then
    print_versions
    return 0
  fi
  [[ $(id -u) == 0 ]] || die "run as root"
  lock
  trap cleanup EXIT
  trap 'exit 130' INT
  trap 'exit 143' TERM
  fresh && { print_versions; return 0; } # another run finished it while we waited
  mkdir -p "$BK" "$LOGS"
  HOST_ARCH=$(dpkg --print-architecture)
  URI=$(debian_uri)
  PYTHON=$(command -v /usr/bin/python3 || command -v python3) || die "python3 is needed"
  # leftovers of an interrupted run
  stop_everything
  unmount_under "$BK" || die "cannot unmount leftovers under $BK"
  safe_rm "$CHROOT.tmp"
  rm -f "$IMAGE_TAR.tmp" "$VERSIONS.tmp"

  local cached=0 current=''
  have_image && cached=1 && current=$(cat "$KEYFILE")
  log "asking $URI which $DOCKER_DEV / $RUNC_DEV $SUITE serves"
  if archive_check; then
    if ((cached)) && [[ $current == "$ARCHIVE_KEY" ]]; then
      now >"$CHECKED"
      log "cached image is current"
      print_versions
      return 0
    fi
    if ((cached)); then log "archive changed: have '$current', $SUITE has '$ARCHIVE_KEY': rebuilding"; fi
  else
    if ((cached)); then
      warn "cannot reach $URI ($SUITE); reusing the cached image (see $LOGS/apt-check.log)"
      # ask again in OFFLINE_RETRY seconds, not at every call
      if ((RECHECK > OFFLINE_RETRY)); then echo $(($(now) - RECHECK + OFFLINE_RETRY)) >"$CHECKED"; fi
      print_versions
      return 0
    fi
    tail -5 "$LOGS/apt-check.log" >&2 || true
    die "cannot reach $URI ($SUITE) and no cached image"
  fi
  build
  print_versions
}

cmd_clean() {
  [[ $(id -u) == 0 ]] || die "run as root"
  lock
  trap cleanup EXIT
  trap 'exit 130' INT
  trap 'exit 143' TERM
  stop_everything
  unmount_under "$BK" || die "cannot unmount everything under $BK"
  safe_rm "$BK"
  log "removed $BK"
}

case ${1:-} in
  ensure) cmd_ensure ;;
  clean) cmd_clean ;;
  *)
    echo "usage: $0 ensure|clean" >&2
    exit 2
    ;;
esac
