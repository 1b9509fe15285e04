#!/usr/bin/env bash
# Provision and run a real container build stack for the e2e tests, with two engine
# generations side by side:
#   previous: containerd 1.7 + dockerd (Docker Engine 26, containerd image store) +
#             buildx 0.13 from Debian trixie packages unpacked into a private prefix
#   current:  containerd 2.1 + dockerd 28 + buildx 0.29 from Debian sid packages,
#             unpacked into a second prefix, with its own sockets, data and bridge
# plus runc/qemu/registry/socat from bookworm, an htpasswd-protected registry on
# 127.0.0.1, an auth-less base registry, a locally built multi-platform base image
# (busybox, amd64 + arm64), TCP forwarders from the current bridge's address to both
# registries (for BuildKit in a container) and, when __tests__/e2e/stack/buildkit-image.sh
# exists, the moby/buildkit:buildx-stable-1 image loaded into both engines.
#
#   stack.sh up      provision if needed, start what is not running; prints started|reused
#   stack.sh down    stop what `up` started (by recorded pid), unmount our mounts
#   stack.sh status  exit 0 when up and healthy, 1 otherwise
#
# See README.md next to this file.
set -euo pipefail

SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
CACHE=${BROKKR_STACK_CACHE:-/var/cache/brokkr-stack}
STATE=${BROKKR_STACK_STATE:-/run/brokkr-stack}

# ---- previous generation (trixie); these names and paths predate "current"
PREFIX=$CACHE/prefix                  # dpkg -x of the trixie packages
BIN=$CACHE/bin                        # symlinks: docker, dockerd, containerd, runc, ...
PIDS=$STATE/pids                      # NAME.pid = "PID STARTTIME"
DOCKER_SOCK=$STATE/docker.sock
CTD_SOCK=$STATE/containerd.sock
OWN_DOCKER_HOST=unix://$DOCKER_SOCK
STACK_DOCKER_CONFIG=$STATE/docker-config
DOCKER_DATA=$CACHE/docker-data        # persists across down/up: images survive
CTD_ROOT=$CACHE/containerd            # containerd content store + snapshots (persists)
REG_DIR=$STATE/registry
REG_DATA=$REG_DIR/data
REG_USER=brokkr
BASE_REG_DIR=$STATE/base-registry
BASE_REG_DATA=$CACHE/base-registry-data   # survives down/up
BASE_TAG=brokkr-base/busybox:stable
BASE_RECIPE="v2 amd64+arm64 no-provenance" # change to force a rebuild of the base image
SBOM_GEN_TAG=brokkr-base/sbom-generator:1
SBOM_GEN_DIR=$SCRIPT_DIR/sbom-generator     # Dockerfile + scan.sh (BuildKit's SBOM generator protocol)
SBOM_GEN_RECIPE="v1 amd64+arm64 no-provenance"
BUILDX_PLUGIN=$PREFIX/usr/libexec/docker/cli-plugins/docker-buildx
# Buildkit RUN steps use dockerd's network named "bridge" by default, so dockerd needs a
# bridge. We create our own (not docker0), with no iptables rules and no forwarding.
BRIDGE=${BROKKR_STACK_BRIDGE:-brokkr0}
BRIDGE_CIDR=${BROKKR_STACK_BRIDGE_CIDR:-172.29.213.1/24}

TRIXIE_PKGS=(docker.io docker-cli docker-buildx containerd tini)
HOST_PKGS=(runc iptables qemu-user-static docker-registry apache2-utils curl iproute2 socat)
PREFIX_STAMP="v1 ${TRIXIE_PKGS[*]}"
DEBIAN_SOURCES=/etc/apt/sources.list.d/debian.sources
DEFAULT_KEYRING=/usr/share/keyrings/debian-archive-keyring.gpg

# ---- current generation (sid): everything under $CACHE/current and $STATE/current.
# Process names "current/X" keep their pid file in $STATE/current/pids/X.pid and their
# log in $STATE/current/X.log.
CURRENT_ENABLED=${BROKKR_STACK_CURRENT:-1}      # 0: previous generation only
CUR=$CACHE/current
CUR_PREFIX=$CUR/prefix
CUR_BIN=$CUR/bin
CUR_STATE=$STATE/current
CUR_DOCKER_SOCK=$CUR_STATE/docker.sock
CUR_CTD_SOCK=$CUR_STATE/containerd.sock
CUR_DOCKER_HOST=unix://$CUR_DOCKER_SOCK
CUR_DOCKER_CONFIG=$CUR_STATE/docker-config
CUR_DOCKER_DATA=$CUR/docker-data
CUR_CTD_ROOT=$CUR/containerd
CUR_BUILDX_PLUGIN=$CUR_PREFIX/usr/libexec/docker/cli-plugins/docker-buildx
CUR_BRIDGE=${BROKKR_STACK_CURRENT_BRIDGE:-brokkr1}
CUR_BRIDGE_CIDR=${BROKKR_STACK_CURRENT_BRIDGE_CIDR:-172.29.214.1/24}
CUR_BRIDGE_IP=${CUR_BRIDGE_CIDR%/*}
# sid's docker.io ships /usr/bin/docker-init -> tini-static and depends on tini-static;
# sid's `tini` package (the dynamic binary) needs glibc 2.38 and is not needed.
SID_PKGS=(docker.io docker-cli docker-buildx containerd tini-static)
SID_STAMP_V=v1
# How long (s) a check of what sid serves stays good; a stopped current engine is only
# started after a check older than this re-asks the archive (0: always ask).
SID_TTL=${BROKKR_STACK_SID_TTL:-21600}
SID_OPTS=(-o APT::Architecture=amd64 -o APT::Architectures=amd64 -o Acquire::Check-Valid-Until=false)

BUILDKIT_SCRIPT=$SCRIPT_DIR/buildkit-image.sh
BUILDKIT_DIR=$CACHE/buildkit                    # image.tar + versions.env, written by BUILDKIT_SCRIPT
BUILDKIT_TAG=moby/buildkit:buildx-stable-1
BUILDKIT_LOADED_STAMP=$CACHE/buildkit-loaded  # .<engine hash>: "tar key" + image id at our last load

STARTED_ANY=0
SPAWNED_PID=
ENGINE=own
ENGINE_HOST=$OWN_DOCKER_HOST
CUR_PKG_VERSIONS=
BUILDKIT_VERSION=
BUILDKIT_RUNC_VERSION=
BUILDKIT_LOADED=0
SBOM_GEN_IMAGE=
CUR_SBOM_GEN_IMAGE=

log() { printf '[stack] %s\n' "$*" >&2; }
die() { printf '[stack] ERROR: %s\n' "$*" >&2; exit 1; }
now() { date +%s.%N; }

# A docker CLI with an explicit engine: dkx HOST BINDIR CONFIGDIR args...
dkx() {
  local h=$1 b=$2 c=$3
  shift 3
  env -u DOCKER_CONTEXT DOCKER_HOST="$h" DOCKER_CONFIG="$c" "$b/docker" "$@"
}
# Docker CLI of the private prefix, talking to the chosen (previous) engine, with our own config dir.
dk() { dkx "$ENGINE_HOST" "$BIN" "$STACK_DOCKER_CONFIG" "$@"; }
# The current generation's CLI against the current engine.
dkc() { dkx "$CUR_DOCKER_HOST" "$CUR_BIN" "$CUR_DOCKER_CONFIG" "$@"; }

# ---------------------------------------------------------------- pid bookkeeping
proc_start() { # start time (clock ticks since boot) of a pid; field 22 of /proc/PID/stat
  local s
  s=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
  s=${s##*) }
  set -- $s
  [[ $1 != Z && $1 != X ]] || return 1   # zombie/dead counts as gone
  echo "${20}"
}

pidfile() { # NAME -> path of its pid file ("current/x" -> $STATE/current/pids/x.pid)
  if [[ $1 == */* ]]; then echo "$STATE/${1%/*}/pids/${1##*/}.pid"; else echo "$PIDS/$1.pid"; fi
}

record_pid() { # NAME PID
  local st
  st=$(proc_start "$2") || die "process $1 ($2) died right after start; see $STATE/$1.log"
  echo "$2 $st" >"$(pidfile "$1")"
}

pid_of() { # NAME -> prints the pid when the recorded process is still the same and alive
  local f pid st cur
  f=$(pidfile "$1")
  [[ -f $f ]] || return 1
  read -r pid st <"$f" || return 1
  [[ -n ${pid:-} ]] || return 1
  cur=$(proc_start "$pid") || return 1
  [[ $cur == "$st" ]] || return 1
  echo "$pid"
}

alive_pids() { # NAME... -> pids of those still running
  local n p out=()
  for n in "$@"; do
    if p=$(pid_of "$n"); then out+=("$p"); fi
  done
  echo "${out[*]:-}"
}

# Start a daemon in its own session, stdout/stderr to $STATE/NAME.log, lock fd closed.
# SPAWN_BIN (default $BIN) goes first on its PATH.
spawn() { # NAME CMD...
  local name=$1 bin=${SPAWN_BIN:-$BIN}
  shift
  echo "=== $(date -Is) starting: $*" >>"$STATE/$name.log"
  (
    # Close every inherited descriptor (our lock, a caller's pipes), then exec.
    for fd in /proc/$BASHPID/fd/*; do
      fd=${fd##*/}
      if ((fd > 2)); then eval "exec $fd>&-" 2>/dev/null || true; fi
    done
    export PATH="$bin:$PATH"
    exec setsid "$@" </dev/null >>"$STATE/$name.log" 2>&1
  ) &
  SPAWNED_PID=$!
  record_pid "$name" "$SPAWNED_PID"
  STARTED_ANY=1
  log "started $name (pid $SPAWNED_PID, log $STATE/$name.log)"
}

stop_pid() { # NAME [group]: SIGTERM, wait up to 10 s, SIGKILL; "group": signal its process group
  local name=$1 group=${2:-} pid st i target
  if pid=$(pid_of "$name"); then
    st=$(proc_start "$pid")
    target=$pid
    [[ $group != group ]] || target=-$pid # spawn's setsid made it a group leader
    log "stopping $name (pid $pid)"
    kill -TERM -- "$target" 2>/dev/null || kill -TERM "$pid" 2>/dev/null || true
    for ((i = 0; i < 100; i++)); do
      [[ "$(proc_start "$pid" 2>/dev/null || true)" == "$st" ]] || break
      sleep 0.1
    done
    if [[ "$(proc_start "$pid" 2>/dev/null || true)" == "$st" ]]; then
      log "$name (pid $pid) ignored SIGTERM for 10 s: SIGKILL"
      kill -KILL -- "$target" 2>/dev/null || kill -KILL "$pid" 2>/dev/null || true
      sleep 0.2
    elif [[ $group == group ]]; then
      kill -TERM -- "$target" 2>/dev/null || true # children of a forking forwarder
    fi
  fi
  rm -f "$(pidfile "$name")"
}

wait_until() { # SECONDS CMD... : poll every 0.2 s
  local deadline=$(($(date +%s) + $1))
  shift
  while ! "$@" >/dev/null 2>&1; do
    (($(date +%s) < deadline)) || return 1
    sleep 0.2
  done
}

# ---------------------------------------------------------------- packages
pkg_installed() {
  [[ "$(dpkg-query -W -f='${db:Status-Status}' "$1" 2>/dev/null || true)" == installed ]]
}

ensure_host_packages() {
  local missing=() p
  for p in "${HOST_PKGS[@]}"; do pkg_installed "$p" || missing+=("$p"); done
  ((${#missing[@]})) || return 0
  log "apt-get install ${missing[*]} (bookworm)"
  export DEBIAN_FRONTEND=noninteractive
  # docker-registry ships an init script: keep its postinst from starting a registry on
  # :5000 (only when the machine has no policy-rc.d of its own).
  local policy=/usr/sbin/policy-rc.d
  if [[ ! -e $policy ]]; then
    printf '#!/bin/sh\n# temporary, brokkr stack.sh\nexit 101\n' >"$policy"
    chmod 0755 "$policy"
    trap 'rm -f /usr/sbin/policy-rc.d' EXIT
  fi
  if ! apt-get install -y -q --no-install-recommends "${missing[@]}" >"$STATE/apt-install.log" 2>&1; then
    apt-get update -q >>"$STATE/apt-install.log" 2>&1 || true
    apt-get install -y -q --no-install-recommends "${missing[@]}" >>"$STATE/apt-install.log" 2>&1 ||
      die "apt-get install ${missing[*]} failed; see $STATE/apt-install.log"
  fi
  if [[ $(trap -p EXIT) == *policy-rc.d* ]]; then
    rm -f "$policy"
    trap - EXIT
  fi
}

# Private apt: own lists, cache, sources and (empty) dpkg status, so the machine's apt
# state is untouched. Usage: papt_init DIR ; papt DIR apt-get-args...
papt_init() { # DIR SOURCES_FILE_CONTENT
  mkdir -p "$1/lists/partial" "$1/cache/archives/partial" "$1/parts"
  : >"$1/sources.list"
  [[ -f $1/status ]] || : >"$1/status"
  printf '%s\n' "$2" >"$1/parts/private.sources"
}

papt_run() { # TOOL DIR [extra -o ...] args...
  local tool=$1 d=$2
  shift 2
  "$tool" -q \
    -o Dir::State::Lists="$d/lists" \
    -o Dir::Cache="$d/cache" \
    -o Dir::Cache::pkgcache= -o Dir::Cache::srcpkgcache= \
    -o Dir::Etc::SourceList="$d/sources.list" \
    -o Dir::Etc::SourceParts="$d/parts" \
    -o Dir::State::status="$d/status" \
    -o APT::Sandbox::User=root \
    "$@"
}
papt() { papt_run apt-get "$@"; }
papt_cache() { papt_run apt-cache "$@"; }

PAPT_LAST_OUT=
papt_update() { # DIR [opts...]: fails on any signature problem; shows only the problem lines
  local d=$1 rc=0
  shift
  PAPT_LAST_OUT=$(papt "$d" "$@" update 2>&1) || rc=$?
  if ((rc)) || grep -qE 'NO_PUBKEY|not signed|EXPKEYSIG|BADSIG|Err:|^W: GPG|^E:' <<<"$PAPT_LAST_OUT"; then
    grep -E 'NO_PUBKEY|not signed|EXPKEYSIG|BADSIG|GPG|^Err:|^  |^W:|^E:' <<<"$PAPT_LAST_OUT" | head -4 | sed 's/^/[apt] /' >&2 || true
    return 1
  fi
}

papt_sig_problem() { grep -qE 'NO_PUBKEY|not signed|EXPKEYSIG|BADSIG|GPG error|signature' <<<"$PAPT_LAST_OUT"; }

debian_uri() { # first non-security URI of the machine's debian.sources
  local u
  u=$(awk '/^URIs:/{for (i = 2; i <= NF; i++) if ($i !~ /security/) {print $i; exit}}' "$DEBIAN_SOURCES" 2>/dev/null || true)
  [[ -n $u ]] || die "no URIs: line in $DEBIAN_SOURCES"
  echo "$u"
}

suite_sources() { # SUITE KEYRING
  printf 'Types: deb\nURIs: %s\nSuites: %s\nComponents: main\nSigned-By: %s\n' "$(debian_uri)" "$1" "$2"
}

# The newest debian-archive-keyring bookworm ships (it carries the keys of newer suites),
# fetched once into $CACHE/keyring. Prints its keyring path.
newer_keyring() {
  local b=$CACHE/apt/bookworm-amd64 kd=$CACHE/keyring
  local k=$kd/root/usr/share/keyrings/debian-archive-keyring.gpg
  if [[ ! -f $k ]]; then
    papt_init "$b" "$(cat "$DEBIAN_SOURCES")"
    papt_update "$b" -o APT::Architecture=amd64 -o APT::Architectures=amd64 || return 1
    rm -rf "$kd" && mkdir -p "$kd/deb"
    (cd "$kd/deb" && papt "$b" download debian-archive-keyring >/dev/null) || return 1
    dpkg -x "$kd"/deb/*.deb "$kd/root" || return 1
  fi
  echo "$k"
}

# Private apt lists for SUITE, verified with the machine's keyring, else with a newer
# debian-archive-keyring from bookworm.
papt_suite_update() { # DIR SUITE [opts...]
  local d=$1 suite=$2 keyring=$DEFAULT_KEYRING
  shift 2
  papt_init "$d" "$(suite_sources "$suite" "$keyring")"
  papt_update "$d" "$@" && return 0
  papt_sig_problem || return 1 # not reachable: a newer keyring would not help
  log "$suite not verifiable with $keyring; trying a newer debian-archive-keyring"
  keyring=$(newer_keyring) || return 1
  papt_init "$d" "$(suite_sources "$suite" "$keyring")"
  papt_update "$d" "$@"
}

ensure_prefix() {
  if [[ -f $PREFIX/.stamp && "$(cat "$PREFIX/.stamp")" == "$PREFIX_STAMP" && -x $BIN/dockerd ]]; then
    return 0
  fi
  local a=$CACHE/apt/trixie-amd64 dl=$CACHE/debs/trixie
  log "fetching ${TRIXIE_PKGS[*]} from trixie (private apt in $a)"
  papt_suite_update "$a" trixie -o APT::Architecture=amd64 -o APT::Architectures=amd64 ||
    die "trixie Release cannot be fetched or verified"
  rm -rf "$dl" && mkdir -p "$dl"
  (cd "$dl" && papt "$a" -o APT::Architecture=amd64 download "${TRIXIE_PKGS[@]}" >/dev/null) ||
    die "apt-get download ${TRIXIE_PKGS[*]} (trixie) failed"
  unpack_generation "$dl" "$PREFIX" "$BIN" "$BUILDX_PLUGIN" "previous generation"
  echo "$PREFIX_STAMP" >"$PREFIX/.stamp"
}

# DEBS PREFIX BIN BUILDX LABEL: unpacks every package of DEBS into PREFIX (swapped in whole, so an
# interrupted unpack never leaves a half prefix) and links the binaries an engine needs into BIN.
unpack_generation() {
  local dl=$1 prefix=$2 bin=$3 buildx=$4 label=$5 tmp=$2.tmp deb f
  rm -rf "$tmp" && mkdir -p "$tmp"
  for deb in "$dl"/*.deb; do dpkg -x "$deb" "$tmp"; done
  (cd "$dl" && ls -1 ./*.deb) >"$tmp/.debs"
  rm -rf "$prefix" && mv "$tmp" "$prefix"

  rm -rf "$bin" && mkdir -p "$bin"
  ln -s "$prefix/usr/bin/docker" "$bin/docker"
  ln -s "$prefix/usr/sbin/dockerd" "$bin/dockerd"
  ln -s "$prefix/usr/sbin/docker-proxy" "$bin/docker-proxy"
  ln -s "$prefix/usr/bin/containerd" "$bin/containerd"
  ln -s "$prefix/usr/bin/containerd-shim-runc-v2" "$bin/containerd-shim-runc-v2"
  ln -s "$prefix/usr/bin/ctr" "$bin/ctr"
  ln -s "$prefix/usr/bin/tini-static" "$bin/docker-init"
  ln -s "$buildx" "$bin/docker-buildx"
  ln -s /usr/sbin/runc "$bin/runc"
  for f in docker dockerd containerd containerd-shim-runc-v2 ctr docker-init runc docker-buildx; do
    [[ -x $bin/$f ]] || die "$label: $bin/$f missing after unpacking"
  done
}

# ---------------------------------------------------------------- current generation: packages
sid_served() { # DIR -> "pkg=version ..." as the private sid lists serve them
  local d=$1 p v out=()
  for p in "${SID_PKGS[@]}"; do
    v=$(papt_cache "$d" "${SID_OPTS[@]}" show --no-all-versions "$p" 2>/dev/null | awk '/^Version:/ {print $2; exit}')
    [[ -n $v ]] || return 1
    out+=("$p=$v")
  done
  echo "${out[*]}"
}

fresh() { # FILE SECONDS: FILE exists and is younger than SECONDS
  [[ -f $1 ]] || return 1
  (($(date +%s) - $(stat -c %Y "$1") < $2))
}

pkg_version() { # NAME -> version of NAME in $CUR_PKG_VERSIONS
  local kv
  for kv in $CUR_PKG_VERSIONS; do
    [[ ${kv%%=*} != "$1" ]] || { echo "${kv#*=}"; return 0; }
  done
  return 1
}

# sid's docker.io, docker-cli, docker-buildx, containerd, tini-static, dpkg -x'd into
# $CUR_PREFIX. Downloads again only when the versions sid serves differ from the cached
# ones; asks sid only when the current engine must be started and the last check is older
# than $SID_TTL; offline (or unverifiable) with a cached prefix = reuse it.
ensure_current_prefix() {
  local stamp=$CUR_PREFIX/.stamp checked=$CUR/.sid-checked a=$CACHE/apt/sid-amd64 have='' served
  mkdir -p "$CUR"
  if [[ -f $stamp && -x $CUR_BIN/dockerd ]]; then have=$(cat "$stamp"); fi
  if [[ $have == "$SID_STAMP_V "* ]]; then
    CUR_PKG_VERSIONS=${have#"$SID_STAMP_V "}
    if pid_of current/dockerd >/dev/null || fresh "$checked" "$SID_TTL"; then return 0; fi
  else
    have=''
  fi
  log "asking sid for ${SID_PKGS[*]} (private apt in $a)"
  if ! papt_suite_update "$a" sid "${SID_OPTS[@]}" -o Acquire::http::Timeout=20 -o Acquire::Retries=1 ||
    ! served=$(sid_served "$a"); then
    [[ -n $have ]] || die "current generation: cannot fetch or verify sid's package lists and nothing is cached (BROKKR_STACK_CURRENT=0 skips the current generation)"
    log "sid not reachable or not verifiable: reusing the cached current prefix ($CUR_PKG_VERSIONS)"
    return 0
  fi
  if [[ $have == "$SID_STAMP_V $served" ]]; then
    touch "$checked"
    return 0
  fi
  log "sid serves: $served${have:+ (cached: ${have#"$SID_STAMP_V "})}; downloading"
  local dl=$CUR/debs kv pins=()
  for kv in $served; do pins+=("$kv"); done
  rm -rf "$dl" && mkdir -p "$dl"
  (cd "$dl" && papt "$a" "${SID_OPTS[@]}" download "${pins[@]}" >/dev/null) ||
    die "current generation: apt-get download ${pins[*]} (sid) failed"
  unpack_generation "$dl" "$CUR_PREFIX" "$CUR_BIN" "$CUR_BUILDX_PLUGIN" "current generation"
  echo "$SID_STAMP_V $served" >"$stamp"
  touch "$checked"
  CUR_PKG_VERSIONS=$served
}

# One line, and the glibc named, when a sid binary does not run on this machine.
runs_here() { # LABEL CMD...
  local label=$1 out need glibc rc=0
  shift
  out=$("$@" 2>&1 </dev/null) || rc=$?
  ((rc)) || return 0
  glibc=$(ldd --version 2>/dev/null | awk 'NR == 1 {print $NF}')
  need=$(grep -oE 'GLIBC_[0-9.]+' <<<"$out" | sort -uV | tail -1 || true)
  if [[ -n $need ]]; then
    die "current generation: sid's $label does not run here: it needs $need, this machine has glibc ${glibc:-?} (BROKKR_STACK_CURRENT=0 skips the current generation)"
  fi
  die "current generation: sid's $label does not run here (exit $rc): $(head -1 <<<"$out") (BROKKR_STACK_CURRENT=0 skips the current generation)"
}

check_current_binaries() {
  runs_here "dockerd $(pkg_version docker.io || true)" "$CUR_BIN/dockerd" --version
  runs_here "docker $(pkg_version docker-cli || true)" "$CUR_BIN/docker" --version
  runs_here "containerd $(pkg_version containerd || true)" "$CUR_BIN/containerd" --version
  runs_here "docker-buildx $(pkg_version docker-buildx || true)" "$CUR_BIN/docker-buildx" version
  runs_here "docker-init (tini-static $(pkg_version tini-static || true))" "$CUR_BIN/docker-init" --version
}

# busybox-static for amd64 and arm64 (bookworm), unpacked into the base image context.
ensure_busybox() {
  local ctx=$CACHE/base-context arch
  [[ -x $ctx/rootfs-amd64/bin/busybox && -x $ctx/rootfs-arm64/bin/busybox && -f $ctx/Dockerfile ]] && return 0
  log "fetching busybox-static (amd64, arm64) from bookworm"
  rm -rf "$ctx" && mkdir -p "$ctx"
  for arch in amd64 arm64; do
    local a=$CACHE/apt/bookworm-$arch dl=$CACHE/debs/busybox-$arch
    papt_init "$a" "$(cat "$DEBIAN_SOURCES")"
    papt_update "$a" -o APT::Architecture="$arch" -o APT::Architectures="$arch" ||
      die "private apt update (bookworm, $arch) failed"
    rm -rf "$dl" && mkdir -p "$dl"
    (cd "$dl" && papt "$a" -o APT::Architecture="$arch" -o APT::Architectures="$arch" download busybox-static >/dev/null) ||
      die "apt-get download busybox-static:$arch failed"
    dpkg -x "$dl"/busybox-static_*.deb "$dl/root"
  done
  # Applet list from the native binary (same Debian config for both architectures).
  local applets
  applets=$("$CACHE/debs/busybox-amd64/root/bin/busybox" --list)
  for arch in amd64 arm64; do
    local r=$ctx/rootfs-$arch app
    mkdir -p "$r/bin" "$r/etc" "$r/root" "$r/tmp" "$r/usr/bin" "$r/usr/sbin" "$r/sbin" "$r/var/tmp"
    chmod 1777 "$r/tmp" "$r/var/tmp"
    cp "$CACHE/debs/busybox-$arch/root/bin/busybox" "$r/bin/busybox"
    for app in $applets; do
      [[ $app == busybox ]] || ln -sf busybox "$r/bin/$app"
    done
    printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n' >"$r/etc/passwd"
    printf 'root:x:0:\nnogroup:x:65534:\n' >"$r/etc/group"
  done
  cat >"$ctx/Dockerfile" <<'EOF'
# Generated by __tests__/e2e/stack/stack.sh: Debian bookworm busybox-static, per platform.
FROM scratch
ARG TARGETARCH
COPY rootfs-${TARGETARCH}/ /
ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
CMD ["/bin/sh"]
EOF
}

# ---------------------------------------------------------------- QEMU binfmt
ensure_binfmt() {
  local conf=/usr/lib/binfmt.d/qemu-aarch64.conf interp
  [[ -f $conf ]] || die "$conf missing (qemu-user-static)"
  interp=$(awk -F: '{print $7}' "$conf")
  [[ -x $interp ]] || die "QEMU interpreter $interp (from $conf) missing"
  if [[ ! -f /proc/sys/fs/binfmt_misc/register ]]; then
    mount -t binfmt_misc binfmt_misc /proc/sys/fs/binfmt_misc || die "cannot mount binfmt_misc"
  fi
  if [[ ! -e /proc/sys/fs/binfmt_misc/qemu-aarch64 ]]; then
    log "registering qemu-aarch64 with binfmt_misc (left in place at down)"
    cat "$conf" >/proc/sys/fs/binfmt_misc/register || die "binfmt_misc registration failed"
    echo "$(date -Is) registered qemu-aarch64" >>"$STATE/binfmt.log"
  fi
  grep -q '^enabled' /proc/sys/fs/binfmt_misc/qemu-aarch64 || die "qemu-aarch64 binfmt entry is disabled"
  grep -q '^flags:.*F' /proc/sys/fs/binfmt_misc/qemu-aarch64 ||
    log "WARNING: qemu-aarch64 binfmt entry lacks the F flag; arm64 RUN steps may fail in containers"
}

# ---------------------------------------------------------------- engine
setup_docker_config() { # DIR PLUGIN
  mkdir -p "$1/cli-plugins"
  ln -sfn "$2" "$1/cli-plugins/docker-buildx"
  [[ -f $1/config.json ]] || echo '{}' >"$1/config.json"
}

engine_ok() { # DOCKER_HOST [BINDIR CONFIGDIR]: answers, and uses the containerd image store
  local h=$1 b=${2:-$BIN} c=${3:-$STACK_DOCKER_CONFIG} v info
  v=$(env -u DOCKER_CONTEXT DOCKER_HOST="$h" DOCKER_CONFIG="$c" \
    timeout 10 "$b/docker" version -f '{{.Server.Version}}' 2>/dev/null) || return 1
  [[ ${v%%.*} =~ ^[0-9]+$ ]] && ((${v%%.*} >= 25)) || return 1
  info=$(env -u DOCKER_CONTEXT DOCKER_HOST="$h" DOCKER_CONFIG="$c" \
    timeout 10 "$b/docker" info -f '{{json .DriverStatus}}' 2>/dev/null) || return 1
  [[ $info == *io.containerd.snapshotter.v1* ]]
}

choose_engine() {
  ENGINE=own
  ENGINE_HOST=$OWN_DOCKER_HOST
  # Our own engine from an earlier `up` wins.
  if pid_of dockerd >/dev/null || pid_of containerd >/dev/null; then return 0; fi
  local cand=${DOCKER_HOST:-unix:///var/run/docker.sock} mode=${BROKKR_STACK_REUSE:-auto}
  [[ $cand != "$OWN_DOCKER_HOST" && $cand != "$CUR_DOCKER_HOST" ]] || return 0
  case $mode in
    0) return 0 ;;
    1)
      engine_ok "$cand" || die "BROKKR_STACK_REUSE=1 but no usable engine (docker >= 25 with the containerd snapshotter) at $cand"
      ;;
    *)
      engine_ok "$cand" || return 0
      ;;
  esac
  ENGINE=external
  ENGINE_HOST=$cand
  log "reusing the engine at $cand"
}

ctd_ok() { "$BIN/ctr" --address "$CTD_SOCK" version; }

ensure_containerd() {
  if pid_of containerd >/dev/null && ctd_ok >/dev/null 2>&1; then return 0; fi
  stop_pid dockerd # it would keep talking to a dead containerd
  stop_pid containerd
  mkdir -p "$CTD_ROOT" "$STATE/ctd" "$CACHE/containerd-opt"
  cat >"$STATE/containerd.toml" <<EOF
version = 2
root = "$CTD_ROOT"
state = "$STATE/ctd"
disabled_plugins = ["io.containerd.grpc.v1.cri"]

[grpc]
  address = "$CTD_SOCK"

[ttrpc]
  address = "$CTD_SOCK.ttrpc"

[debug]
  address = ""

[plugins."io.containerd.internal.v1.opt"]
  path = "$CACHE/containerd-opt"
EOF
  rm -f "$CTD_SOCK" "$CTD_SOCK.ttrpc"
  spawn containerd "$BIN/containerd" --config "$STATE/containerd.toml"
  wait_until 30 ctd_ok || { tail -20 "$STATE/containerd.log" >&2; die "containerd did not come up"; }
}

dockerd_ok() { engine_ok "$OWN_DOCKER_HOST"; }

ensure_bridge() { # NAME CIDR MARKER_FILE
  local name=$1 cidr=$2 marker=$3
  if ! ip link show "$name" >/dev/null 2>&1; then
    log "creating bridge $name ($cidr; no NAT, no forwarding)"
    ip link add "$name" type bridge || die "cannot create bridge $name"
    touch "$marker"
  fi
  if ! ip -o -4 addr show dev "$name" | grep -qF " $cidr "; then
    ip addr add "$cidr" dev "$name" || die "cannot address bridge $name with $cidr"
  fi
  pin_bridge_mac "$name"
  ip link set "$name" up
}

# A bridge without an address of its own takes the lowest MAC of its ports, so it changes
# whenever a container with a lower veth MAC joins or one leaves. Containers still holding the
# old gateway MAC in their ARP cache then lose every packet to the host until that entry
# expires and is re-resolved (TCP retransmits meanwhile: stalls of ~26 s and ~54 s, seen in the
# pipeline benchmark as lazy cache fetches and registry dials that hang). dockerd pins the MAC
# of every bridge it creates itself (docker0 on a runner); this bridge is ours, so we pin it.
pin_bridge_mac() { # NAME
  local name=$1 mac
  [[ "$(cat "/sys/class/net/$name/addr_assign_type" 2>/dev/null)" == 3 ]] && return 0 # already set by hand
  mac=02:$(printf '%s' "brokkr-bridge-$name" | sha256sum | sed -E 's/^(..)(..)(..)(..)(..).*/\1:\2:\3:\4:\5/')
  ip link set dev "$name" address "$mac" || die "cannot set the MAC address of bridge $name"
}

remove_bridge() { # NAME MARKER_FILE
  [[ -f $2 ]] || return 0
  if ip link show "$1" >/dev/null 2>&1; then
    log "deleting bridge $1"
    ip link del "$1" || log "WARNING: could not delete bridge $1"
  fi
  rm -f "$2"
}

ensure_dockerd() {
  if pid_of dockerd >/dev/null && dockerd_ok; then
    pin_bridge_mac "$BRIDGE"
    return 0
  fi
  stop_pid dockerd
  ensure_bridge "$BRIDGE" "$BRIDGE_CIDR" "$STATE/bridge.created"
  mkdir -p "$DOCKER_DATA" "$STATE/x"
  echo '{"features": {"containerd-snapshotter": true}}' >"$STATE/daemon.json"
  rm -f "$DOCKER_SOCK"
  # Our own bridge, no iptables rules, no forwarding, no masquerading: the host's
  # firewall and routing stay as they are; containers only reach the bridge address.
  spawn dockerd "$BIN/dockerd" \
    --config-file "$STATE/daemon.json" \
    --host "$OWN_DOCKER_HOST" \
    --data-root "$DOCKER_DATA" \
    --exec-root "$STATE/x" \
    --pidfile "$STATE/dockerd.pid" \
    --containerd "$CTD_SOCK" \
    --init-path "$BIN/docker-init" \
    --bridge "$BRIDGE" --iptables=false --ip6tables=false --ip-forward=false --ip-masq=false \
    --userland-proxy=false
  wait_until 60 dockerd_ok || { tail -30 "$STATE/dockerd.log" >&2; die "dockerd did not come up (or lacks the containerd snapshotter)"; }
}

buildx_version_of() { # "docker buildx version" output -> version field, needs >= 0.MIN
  local v=$1 min=$2
  [[ $v =~ [[:space:]]v?0\.([0-9]+)\. ]] && ((BASH_REMATCH[1] >= min)) || return 1
  awk '{print $2}' <<<"$v"
}

check_buildx() {
  local v
  v=$(dk buildx version 2>&1) || die "docker buildx version failed: $v"
  BUILDX_VERSION=$(buildx_version_of "$v" 13) || die "buildx >= 0.13 needed, got: $v"
}

# ---------------------------------------------------------------- current generation: engine
cur_ctd_ok() { "$CUR_BIN/ctr" --address "$CUR_CTD_SOCK" version; }
cur_dockerd_ok() { engine_ok "$CUR_DOCKER_HOST" "$CUR_BIN" "$CUR_DOCKER_CONFIG"; }

ensure_current_containerd() {
  if pid_of current/containerd >/dev/null && cur_ctd_ok >/dev/null 2>&1; then return 0; fi
  stop_pid current/dockerd
  stop_pid current/containerd
  mkdir -p "$CUR_CTD_ROOT" "$CUR_STATE/ctd" "$CUR/containerd-opt"
  # containerd 2: no CRI, and no NRI (its socket would be the machine-wide /var/run/nri).
  cat >"$CUR_STATE/containerd.toml" <<EOF
version = 3
root = "$CUR_CTD_ROOT"
state = "$CUR_STATE/ctd"
disabled_plugins = ["io.containerd.grpc.v1.cri", "io.containerd.cri.v1.images", "io.containerd.cri.v1.runtime", "io.containerd.podsandbox.controller.v1.podsandbox", "io.containerd.grpc.v1.sandbox-controllers", "io.containerd.nri.v1.nri"]

[grpc]
  address = "$CUR_CTD_SOCK"

[ttrpc]
  address = "$CUR_CTD_SOCK.ttrpc"

[debug]
  address = ""

[plugins."io.containerd.internal.v1.opt"]
  path = "$CUR/containerd-opt"
EOF
  rm -f "$CUR_CTD_SOCK" "$CUR_CTD_SOCK.ttrpc"
  SPAWN_BIN=$CUR_BIN spawn current/containerd "$CUR_BIN/containerd" --config "$CUR_STATE/containerd.toml"
  wait_until 30 cur_ctd_ok || { tail -20 "$CUR_STATE/containerd.log" >&2; die "current containerd did not come up"; }
}

ensure_current_dockerd() {
  if pid_of current/dockerd >/dev/null && cur_dockerd_ok; then
    pin_bridge_mac "$CUR_BRIDGE" # a stack started before the MAC was pinned
    return 0
  fi
  stop_pid current/dockerd
  ensure_bridge "$CUR_BRIDGE" "$CUR_BRIDGE_CIDR" "$CUR_STATE/bridge.created"
  mkdir -p "$CUR_DOCKER_DATA" "$CUR_STATE/x"
  # The bridge's /24 is an insecure (plain http) registry range, so the docker driver can
  # push to the forwarded registry addresses a docker-container builder uses.
  printf '{"features": {"containerd-snapshotter": true}, "insecure-registries": ["%s"]}\n' "$CUR_BRIDGE_CIDR" >"$CUR_STATE/daemon.json"
  rm -f "$CUR_DOCKER_SOCK"
  SPAWN_BIN=$CUR_BIN spawn current/dockerd "$CUR_BIN/dockerd" \
    --config-file "$CUR_STATE/daemon.json" \
    --host "$CUR_DOCKER_HOST" \
    --data-root "$CUR_DOCKER_DATA" \
    --exec-root "$CUR_STATE/x" \
    --pidfile "$CUR_STATE/dockerd.pid" \
    --containerd "$CUR_CTD_SOCK" \
    --init-path "$CUR_BIN/docker-init" \
    --bridge "$CUR_BRIDGE" --iptables=false --ip6tables=false --ip-forward=false --ip-masq=false \
    --userland-proxy=false
  wait_until 60 cur_dockerd_ok || { tail -30 "$CUR_STATE/dockerd.log" >&2; die "current dockerd did not come up (or lacks the containerd snapshotter)"; }
}

check_current_buildx() {
  local v
  v=$(dkc buildx version 2>&1) || die "current generation: docker buildx version failed: $v"
  CUR_BUILDX_VERSION=$(buildx_version_of "$v" 20) || die "current generation: buildx >= 0.20 expected, got: $v"
}

# ---------------------------------------------------------------- registry
http_code() { # URL [curl args...]
  local u=$1
  shift
  curl -s --noproxy '*' -o /dev/null -w '%{http_code}' --max-time 5 "$@" "$u" 2>/dev/null || true
}

registry_ok() { # PORT
  local p=$1 pw
  pw=$(cat "$REG_DIR/password")
  [[ "$(http_code "http://127.0.0.1:$p/v2/")" == 401 ]] &&
    [[ "$(http_code "http://127.0.0.1:$p/v2/" -u "$REG_USER:$pw")" == 200 ]]
}

port_free() { # PORT
  ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

pick_port() {
  local p i
  for ((i = 0; i < 200; i++)); do
    p=$((20000 + RANDOM % 20000))
    if port_free "$p"; then
      echo "$p"
      return 0
    fi
  done
  die "no free port found"
}

write_registry_config() { # FILE DATA_DIR PORT HTPASSWD_FILE_OR_EMPTY
  {
    cat <<EOF
version: 0.1
log:
  level: info
  formatter: text
storage:
  filesystem:
    rootdirectory: $2
  delete:
    enabled: true
  cache:
    blobdescriptor: inmemory
  maintenance:
    uploadpurging:
      enabled: false
http:
  addr: 127.0.0.1:$3
  relativeurls: true
  secret: $(head -c 16 /dev/urandom | od -An -tx1 | tr -d ' \n')
  headers:
    X-Content-Type-Options: [nosniff]
EOF
    if [[ -n $4 ]]; then
      printf 'auth:\n  htpasswd:\n    realm: brokkr-registry\n    path: %s\n' "$4"
    fi
  } >"$1"
}

# The test registry: htpasswd (bcrypt) auth, user brokkr, random password kept in $REG_DIR.
ensure_registry() {
  mkdir -p "$REG_DIR" "$REG_DATA"
  [[ -s $REG_DIR/password ]] || (umask 077 && head -c 18 /dev/urandom | od -An -tx1 | tr -d ' \n' >"$REG_DIR/password")
  local pw port
  pw=$(cat "$REG_DIR/password")
  if pid_of registry >/dev/null && [[ -s $REG_DIR/port ]] && registry_ok "$(cat "$REG_DIR/port")"; then
    REG_PORT=$(cat "$REG_DIR/port")
    return 0
  fi
  stop_pid registry
  port=$(cat "$REG_DIR/port" 2>/dev/null || true)
  if [[ -z $port ]] || ! port_free "$port"; then port=$(pick_port); fi
  echo "$port" >"$REG_DIR/port"
  htpasswd -Bbn "$REG_USER" "$pw" >"$REG_DIR/htpasswd" 2>/dev/null
  write_registry_config "$REG_DIR/config.yml" "$REG_DATA" "$port" "$REG_DIR/htpasswd"
  spawn registry /usr/bin/docker-registry serve "$REG_DIR/config.yml"
  wait_until 20 registry_ok "$port" || { tail -20 "$STATE/registry.log" >&2; die "registry did not come up on 127.0.0.1:$port"; }
  [[ "$(http_code "http://127.0.0.1:$port/v2/" -u "$REG_USER:wrong-$pw")" == 401 ]] ||
    die "registry accepted a wrong password"
  # The engine side: docker login works, a wrong password is refused.
  printf '%s' "$pw" | dk login "127.0.0.1:$port" -u "$REG_USER" --password-stdin >/dev/null 2>&1 ||
    die "docker login 127.0.0.1:$port failed"
  if printf 'wrong' | dk login "127.0.0.1:$port" -u "$REG_USER" --password-stdin >/dev/null 2>&1; then
    die "docker login with a wrong password succeeded"
  fi
  dk logout "127.0.0.1:$port" >/dev/null 2>&1 || true
  REG_PORT=$port
}

base_registry_ok() { [[ "$(http_code "http://127.0.0.1:$1/v2/")" == 200 ]]; }

# The base-image registry: no auth, storage in the cache dir (survives down/up). Builds
# use FROM 127.0.0.1:PORT/brokkr-base/busybox:stable, so buildkit never asks docker.io.
ensure_base_registry() {
  mkdir -p "$BASE_REG_DIR" "$BASE_REG_DATA"
  local port
  if pid_of base-registry >/dev/null && [[ -s $BASE_REG_DIR/port ]] && base_registry_ok "$(cat "$BASE_REG_DIR/port")"; then
    BASE_REG_PORT=$(cat "$BASE_REG_DIR/port")
    return 0
  fi
  stop_pid base-registry
  port=$(cat "$BASE_REG_DIR/port" 2>/dev/null || true)
  if [[ -z $port ]] || ! port_free "$port"; then port=$(pick_port); fi
  echo "$port" >"$BASE_REG_DIR/port"
  write_registry_config "$BASE_REG_DIR/config.yml" "$BASE_REG_DATA" "$port" ""
  spawn base-registry /usr/bin/docker-registry serve "$BASE_REG_DIR/config.yml"
  wait_until 20 base_registry_ok "$port" || { tail -20 "$STATE/base-registry.log" >&2; die "base registry did not come up on 127.0.0.1:$port"; }
  BASE_REG_PORT=$port
}

# ---------------------------------------------------------------- forwarders (current bridge)
# BuildKit in a container (docker-container driver) sits on the current bridge, where
# 127.0.0.1 is the container itself: socat listens on the bridge address with the
# registry's port number and forwards to 127.0.0.1.
fwd_ok() { # PORT: the forwarded registry answers /v2/ through the bridge address
  [[ "$(http_code "http://$CUR_BRIDGE_IP:$1/v2/")" =~ ^(200|401)$ ]]
}

ensure_forwarder() { # NAME PORT
  local name=current/fwd-$1 port=$2 spec=$CUR_STATE/fwd-$1.spec want
  want="$CUR_BRIDGE_IP:$port -> 127.0.0.1:$port"
  if pid_of "$name" >/dev/null && [[ "$(cat "$spec" 2>/dev/null || true)" == "$want" ]] && fwd_ok "$port"; then
    return 0
  fi
  stop_pid "$name" group
  spawn "$name" /usr/bin/socat "TCP-LISTEN:$port,bind=$CUR_BRIDGE_IP,reuseaddr,fork" "TCP:127.0.0.1:$port"
  echo "$want" >"$spec"
  wait_until 10 fwd_ok "$port" || { tail -10 "$STATE/$name.log" >&2; die "forwarder $want does not answer"; }
}

# ---------------------------------------------------------------- base image
digest_in_base_registry() { # TAG: prints the index digest the base registry serves for it
  local tag=$1
  curl -s --noproxy '*' --max-time 5 -o /dev/null -D - \
    -H 'Accept: application/vnd.oci.image.index.v1+json' \
    -H 'Accept: application/vnd.docker.distribution.manifest.list.v2+json' \
    "http://127.0.0.1:$BASE_REG_PORT/v2/${tag%%:*}/manifests/${tag##*:}" 2>/dev/null |
    tr -d '\r' | awk 'tolower($1) == "docker-content-digest:" {print $2}'
}

ensure_base_image() {
  local ctx=$CACHE/base-context want have stamp remote=127.0.0.1:$BASE_REG_PORT/$BASE_TAG
  BASE_IMAGE=$remote
  stamp=$CACHE/base-image.$(printf '%s' "$ENGINE_HOST" | sha256sum | cut -c1-12).stamp
  want=$( (echo "$BASE_RECIPE"; cd "$ctx" && find . -type f -print0 | sort -z | xargs -0 sha256sum; find . -type l | sort) | sha256sum | cut -c1-16)
  have=$(dk image inspect -f '{{.Id}}' "$BASE_TAG" 2>/dev/null || true)
  if [[ -n $have && -f $stamp && "$(cat "$stamp")" == "$want $have" ]]; then
    if [[ "$(digest_in_base_registry "$BASE_TAG")" == "$have" ]]; then return 0; fi
  else
    log "building $BASE_TAG (linux/amd64 + linux/arm64) into the engine's image store"
    dk buildx build --builder default --platform linux/amd64,linux/arm64 --provenance=false --sbom=false \
      -t "$BASE_TAG" "$ctx" >"$STATE/base-build.log" 2>&1 ||
      { tail -30 "$STATE/base-build.log" >&2; die "base image build failed"; }
    local got
    got=$(dk run --rm --network none --platform linux/amd64 "$BASE_TAG" uname -m 2>&1) || die "amd64 base image does not run: $got"
    [[ $got == x86_64 ]] || die "amd64 base image: uname -m says $got"
    got=$(dk run --rm --network none --platform linux/arm64 "$BASE_TAG" uname -m 2>&1) || die "arm64 base image does not run: $got"
    [[ $got == aarch64 ]] || die "arm64 base image: uname -m says $got"
    have=$(dk image inspect -f '{{.Id}}' "$BASE_TAG")
    echo "$want $have" >"$stamp"
  fi
  log "pushing $BASE_TAG to $remote"
  dk tag "$BASE_TAG" "$remote"
  dk push "$remote" >"$STATE/base-push.log" 2>&1 || { tail -20 "$STATE/base-push.log" >&2; die "push of $remote failed"; }
  [[ "$(digest_in_base_registry "$BASE_TAG")" == "$have" ]] || die "$remote does not serve $have after the push"
}

# The current engine pulls the base image (both platforms) from the base registry and
# tags it brokkr-base/busybox:stable, so it has the same image (same digest) as previous.
ensure_current_base_image() {
  local remote=127.0.0.1:$BASE_REG_PORT/$BASE_TAG digest have stamp=$CUR/base-image.stamp got arch
  CUR_BASE_IMAGE=$CUR_BRIDGE_IP:$BASE_REG_PORT/$BASE_TAG
  digest=$(digest_in_base_registry "$BASE_TAG")
  [[ -n $digest ]] || die "base registry does not serve $BASE_TAG"
  have=$(dkc image inspect -f '{{.Id}}' "$BASE_TAG" 2>/dev/null || true)
  if [[ $have == "$digest" && "$(cat "$stamp" 2>/dev/null || true)" == "$digest" ]]; then return 0; fi
  log "pulling $remote (linux/amd64 + linux/arm64) into the current engine, tagging $BASE_TAG"
  for arch in amd64 arm64; do
    dkc pull -q --platform "linux/$arch" "$remote" >>"$CUR_STATE/base-pull.log" 2>&1 ||
      { tail -20 "$CUR_STATE/base-pull.log" >&2; die "current engine: pull of $remote (linux/$arch) failed"; }
  done
  dkc tag "$remote" "$BASE_TAG"
  have=$(dkc image inspect -f '{{.Id}}' "$BASE_TAG" 2>/dev/null || true)
  [[ $have == "$digest" ]] || die "current engine: $BASE_TAG is $have, the base registry serves $digest"
  got=$(dkc run --rm --network none --platform linux/amd64 "$BASE_TAG" uname -m 2>&1) || die "current engine: amd64 base image does not run: $got"
  [[ $got == x86_64 ]] || die "current engine: amd64 base image: uname -m says $got"
  got=$(dkc run --rm --network none --platform linux/arm64 "$BASE_TAG" uname -m 2>&1) || die "current engine: arm64 base image does not run: $got"
  [[ $got == aarch64 ]] || die "current engine: arm64 base image: uname -m says $got"
  echo "$digest" >"$stamp"
}

# An SBOM generator image for `sbom: generator=...` (the default scanner lives on Docker Hub):
# busybox plus sbom-generator/scan.sh, built like the base image and pushed next to it. Rebuilt
# only when the recipe, scan.sh/Dockerfile or the busybox context change.
ensure_sbom_generator() {
  local ctx=$CACHE/base-context remote=127.0.0.1:$BASE_REG_PORT/$SBOM_GEN_TAG want have stamp
  SBOM_GEN_IMAGE=$remote
  CUR_SBOM_GEN_IMAGE=$CUR_BRIDGE_IP:$BASE_REG_PORT/$SBOM_GEN_TAG
  stamp=$CACHE/sbom-generator.$(printf '%s' "$ENGINE_HOST" | sha256sum | cut -c1-12).stamp
  want=$( (echo "$SBOM_GEN_RECIPE"; cd "$SBOM_GEN_DIR" && sha256sum Dockerfile scan.sh; cd "$ctx" && find . -type f -print0 | sort -z | xargs -0 sha256sum) |
    sha256sum | cut -c1-16)
  have=$(dk image inspect -f '{{.Id}}' "$SBOM_GEN_TAG" 2>/dev/null || true)
  if [[ -n $have && -f $stamp && "$(cat "$stamp")" == "$want $have" ]]; then
    if [[ "$(digest_in_base_registry "$SBOM_GEN_TAG")" == "$have" ]]; then return 0; fi
  else
    log "building $SBOM_GEN_TAG (linux/amd64 + linux/arm64)"
    dk buildx build --builder default --platform linux/amd64,linux/arm64 --provenance=false --sbom=false \
      --build-context "busybox=$ctx" -t "$SBOM_GEN_TAG" "$SBOM_GEN_DIR" >"$STATE/sbom-generator-build.log" 2>&1 ||
      { tail -30 "$STATE/sbom-generator-build.log" >&2; die "SBOM generator image build failed"; }
    local got
    got=$(dk run --rm --network none -e BUILDKIT_SCAN_SOURCE=/etc -e BUILDKIT_SCAN_DESTINATION=/tmp "$SBOM_GEN_TAG" \
      sh -c 'brokkr-sbom-scan && cat /tmp/etc.spdx.json' 2>&1) || die "SBOM generator does not run: $got"
    [[ $got == *'"spdxVersion":"SPDX-2.3"'* ]] || die "SBOM generator wrote no SPDX 2.3 document: $got"
    have=$(dk image inspect -f '{{.Id}}' "$SBOM_GEN_TAG")
    echo "$want $have" >"$stamp"
  fi
  log "pushing $SBOM_GEN_TAG to $remote"
  dk tag "$SBOM_GEN_TAG" "$remote"
  dk push "$remote" >"$STATE/sbom-generator-push.log" 2>&1 || { tail -20 "$STATE/sbom-generator-push.log" >&2; die "push of $remote failed"; }
  [[ "$(digest_in_base_registry "$SBOM_GEN_TAG")" == "$have" ]] || die "$remote does not serve $have after the push"
}

# ---------------------------------------------------------------- BuildKit image
env_value() { # FILE KEY -> value of KEY=... (quotes stripped)
  local v
  v=$(sed -n "s/^\(export \)\{0,1\}$2=//p" "$1" 2>/dev/null | tail -1)
  v=${v#[\"\']}
  v=${v%[\"\']}
  printf '%s' "$v"
}

load_buildkit_into() { # LABEL HOST BINDIR CONFIGDIR TAR KEY
  local label=$1 host=$2 bin=$3 cfg=$4 tar=$5 key=$6 stamp have
  stamp=$BUILDKIT_LOADED_STAMP.$(printf '%s' "$host" | sha256sum | cut -c1-12)
  have=$(dkx "$host" "$bin" "$cfg" image inspect -f '{{.Id}}' "$BUILDKIT_TAG" 2>/dev/null || true)
  if [[ -n $have && "$(cat "$stamp" 2>/dev/null || true)" == "$key $have" ]]; then return 0; fi
  log "loading $BUILDKIT_TAG into the $label engine ($host)"
  dkx "$host" "$bin" "$cfg" load -i "$tar" >"$STATE/buildkit-load-$label.log" 2>&1 ||
    { tail -10 "$STATE/buildkit-load-$label.log" >&2; log "WARNING: docker load into the $label engine failed"; return 1; }
  have=$(dkx "$host" "$bin" "$cfg" image inspect -f '{{.Id}}' "$BUILDKIT_TAG" 2>/dev/null || true)
  [[ -n $have ]] || { log "WARNING: $tar did not bring $BUILDKIT_TAG into the $label engine"; return 1; }
  echo "$key $have" >"$stamp"
}

# moby/buildkit:buildx-stable-1 for the docker-container driver, built by
# buildkit-image.sh (cold: about 3-4 min) and loaded into both engines when missing.
ensure_buildkit_image() {
  BUILDKIT_LOADED=0
  [[ ${BROKKR_STACK_BUILDKIT:-1} != 0 ]] || { log "BROKKR_STACK_BUILDKIT=0: not providing $BUILDKIT_TAG"; return 0; }
  [[ -f $BUILDKIT_SCRIPT ]] || { log "no $BUILDKIT_SCRIPT yet: $BUILDKIT_TAG not provided"; return 0; }
  local dir=$BUILDKIT_DIR t0=$SECONDS key ok=1
  log "buildkit-image.sh ensure (cached: seconds; cold: about 3-4 min, progress below)"
  if ! BROKKR_STACK_CACHE=$CACHE BROKKR_STACK_STATE=$STATE bash "$BUILDKIT_SCRIPT" ensure </dev/null >&2 9>&-; then
    log "WARNING: buildkit-image.sh ensure failed after $((SECONDS - t0)) s: $BUILDKIT_TAG not provided"
    return 0
  fi
  [[ -s $dir/image.tar && -f $dir/versions.env ]] ||
    { log "WARNING: buildkit-image.sh left no $dir/image.tar or versions.env"; return 0; }
  BUILDKIT_VERSION=$(env_value "$dir/versions.env" BUILDKIT_VERSION)
  BUILDKIT_RUNC_VERSION=$(env_value "$dir/versions.env" RUNC_VERSION)
  key="$(stat -c '%s %Y' "$dir/image.tar") $(sha256sum <"$dir/versions.env" | cut -c1-16)"
  load_buildkit_into previous "$ENGINE_HOST" "$BIN" "$STACK_DOCKER_CONFIG" "$dir/image.tar" "$key" || ok=0
  if [[ $CURRENT_ENABLED != 0 ]]; then
    load_buildkit_into current "$CUR_DOCKER_HOST" "$CUR_BIN" "$CUR_DOCKER_CONFIG" "$dir/image.tar" "$key" || ok=0
  fi
  ((ok)) && BUILDKIT_LOADED=1
  log "BuildKit image: $BUILDKIT_TAG = BuildKit ${BUILDKIT_VERSION:-?}, runc ${BUILDKIT_RUNC_VERSION:-?} ($((SECONDS - t0)) s)"
}

# ---------------------------------------------------------------- env files
write_env() {
  local started=$1 docker_version
  docker_version=$(dk version -f '{{.Server.Version}}' 2>/dev/null || echo unknown)
  local -a kv=(
    "DOCKER_HOST=$ENGINE_HOST"
    "BROKKR_STACK_BIN=$BIN"
    "BROKKR_BUILDX_PLUGIN=$BUILDX_PLUGIN"
    "BROKKR_REGISTRY=127.0.0.1:$REG_PORT"
    "BROKKR_REGISTRY_USER=$REG_USER"
    "BROKKR_REGISTRY_PASSWORD=$(cat "$REG_DIR/password")"
    "BROKKR_REGISTRY_DATA=$REG_DATA"
    "BROKKR_BASE_IMAGE=$BASE_IMAGE"
    "BROKKR_BASE_REGISTRY=127.0.0.1:$BASE_REG_PORT"
    "BROKKR_BASE_IMAGE_LOCAL=$BASE_TAG"
    "BROKKR_SBOM_GENERATOR=$SBOM_GEN_IMAGE"
    "BROKKR_STACK_STARTED=$started"
    "BROKKR_STACK_PIDS=$(alive_pids base-registry registry dockerd containerd)"
    "BROKKR_STACK_ENGINE=$ENGINE"
    "BROKKR_STACK_STATE=$STATE"
    "BROKKR_STACK_CACHE=$CACHE"
    "BROKKR_DOCKER_VERSION=$docker_version"
    "BROKKR_BUILDX_VERSION=$BUILDX_VERSION"
  )
  if [[ $CURRENT_ENABLED != 0 ]]; then
    local cur_docker_version ctd
    cur_docker_version=$(dkc version -f '{{.Server.Version}}' 2>/dev/null || echo unknown)
    ctd=$(pkg_version containerd || echo unknown)
    kv+=(
      "BROKKR_CURRENT_DOCKER_HOST=$CUR_DOCKER_HOST"
      "BROKKR_CURRENT_BIN=$CUR_BIN"
      "BROKKR_CURRENT_BUILDX_PLUGIN=$CUR_BUILDX_PLUGIN"
      "BROKKR_CURRENT_DOCKER_VERSION=$cur_docker_version"
      "BROKKR_CURRENT_BUILDX_VERSION=$CUR_BUILDX_VERSION"
      "BROKKR_CURRENT_CONTAINERD_VERSION=${ctd%-*}"
      "BROKKR_CURRENT_PACKAGES=$CUR_PKG_VERSIONS"
      "BROKKR_CURRENT_BRIDGE=$CUR_BRIDGE"
      "BROKKR_CURRENT_BRIDGE_IP=$CUR_BRIDGE_IP"
      "BROKKR_CURRENT_REGISTRY=$CUR_BRIDGE_IP:$REG_PORT"
      "BROKKR_CURRENT_BASE_REGISTRY=$CUR_BRIDGE_IP:$BASE_REG_PORT"
      "BROKKR_CURRENT_BASE_IMAGE=$CUR_BASE_IMAGE"
      "BROKKR_CURRENT_SBOM_GENERATOR=$CUR_SBOM_GEN_IMAGE"
      "BROKKR_CURRENT_PIDS=$(alive_pids current/fwd-base-registry current/fwd-registry current/dockerd current/containerd)"
    )
  fi
  if ((BUILDKIT_LOADED)); then
    kv+=(
      "BROKKR_BUILDKIT_IMAGE=$BUILDKIT_TAG"
      "BROKKR_BUILDKIT_VERSION=$BUILDKIT_VERSION"
      "BROKKR_BUILDKIT_RUNC_VERSION=$BUILDKIT_RUNC_VERSION"
    )
  fi
  local line k v json='{' sep=''
  printf '%s\n' "${kv[@]}" >"$STATE/stack.env.tmp"
  for line in "${kv[@]}"; do
    k=${line%%=*}
    v=${line#*=}
    v=${v//\\/\\\\}
    v=${v//\"/\\\"}
    json+="$sep\"$k\": \"$v\""
    sep=', '
  done
  printf '%s}\n' "$json" >"$STATE/stack.json.tmp"
  mv "$STATE/stack.env.tmp" "$STATE/stack.env"
  mv "$STATE/stack.json.tmp" "$STATE/stack.json"
  echo "$ENGINE $ENGINE_HOST" >"$STATE/engine"
}

# ---------------------------------------------------------------- commands
lock() {
  mkdir -p "$STATE" "$PIDS" "$CACHE" "$CUR_STATE/pids"
  exec 9>"$STATE/.lock"
  flock 9
}

check_current_config() {
  [[ $CUR_BRIDGE != "$BRIDGE" ]] || die "the current bridge ($CUR_BRIDGE) must differ from the previous one"
  [[ ${CUR_BRIDGE_CIDR%.*} != "${BRIDGE_CIDR%.*}" ]] ||
    die "the current bridge's network ($CUR_BRIDGE_CIDR) must differ from the previous one ($BRIDGE_CIDR)"
}

cmd_up() {
  [[ $(id -u) == 0 ]] || die "run as root"
  ((${#STATE} < 62)) || die "BROKKR_STACK_STATE is too long for unix socket paths: $STATE"
  [[ $CURRENT_ENABLED == 0 ]] || check_current_config
  lock
  local t0=$SECONDS
  ensure_host_packages
  ensure_prefix
  if [[ $CURRENT_ENABLED != 0 ]]; then
    ensure_current_prefix
    check_current_binaries
  fi
  ensure_busybox
  ensure_binfmt
  setup_docker_config "$STACK_DOCKER_CONFIG" "$BUILDX_PLUGIN"
  choose_engine
  if [[ $ENGINE == own ]]; then
    ensure_containerd
    ensure_dockerd
  fi
  check_buildx
  if [[ $CURRENT_ENABLED != 0 ]]; then
    setup_docker_config "$CUR_DOCKER_CONFIG" "$CUR_BUILDX_PLUGIN"
    ensure_current_containerd
    ensure_current_dockerd
    check_current_buildx
  fi
  ensure_registry
  ensure_base_registry
  ensure_base_image
  ensure_sbom_generator
  if [[ $CURRENT_ENABLED != 0 ]]; then
    ensure_forwarder registry "$REG_PORT"
    ensure_forwarder base-registry "$BASE_REG_PORT"
    ensure_current_base_image
  fi
  ensure_buildkit_image
  write_env "$STARTED_ANY"
  log "previous: Docker $(dk version -f '{{.Server.Version}}' 2>/dev/null || echo '?'), buildx $BUILDX_VERSION, engine=$ENGINE DOCKER_HOST=$ENGINE_HOST"
  if [[ $CURRENT_ENABLED != 0 ]]; then
    log "current (sid): Docker $(dkc version -f '{{.Server.Version}}' 2>/dev/null || echo '?'), buildx $CUR_BUILDX_VERSION, containerd $(pkg_version containerd || echo '?'); DOCKER_HOST=$CUR_DOCKER_HOST bridge=$CUR_BRIDGE ($CUR_BRIDGE_IP)"
  fi
  log "up in $((SECONDS - t0)) s: registry=127.0.0.1:$REG_PORT${BUILDKIT_VERSION:+ buildkit=$BUILDKIT_VERSION} (env: $STATE/stack.env)"
  if ((STARTED_ANY)); then echo started; else echo reused; fi
}

unmount_under() { # DIR...: unmount every mount at or below one of the dirs, deepest first
  local mp
  # mountinfo field 5 is the mount point.
  UNMOUNT_DIRS="$(printf '%s\n' "$@")" awk '
    BEGIN { n = split(ENVIRON["UNMOUNT_DIRS"], d, "\n") }
    { for (i = 1; i <= n; i++) if (d[i] != "" && ($5 == d[i] || index($5, d[i] "/") == 1)) { print $5; next } }
  ' /proc/self/mountinfo |
    sort -r | while read -r mp; do
      mp=$(printf '%b' "$mp") # \040-style escapes
      log "unmounting $mp"
      umount "$mp" 2>/dev/null || umount -l "$mp" 2>/dev/null || log "WARNING: could not unmount $mp"
    done
}

stop_orphan_shims() { # CONTAINERD_SOCKET...
  # containerd shims started for our containerds (their -address is one of our sockets)
  local d pid cmd s
  for d in /proc/[0-9]*; do
    pid=${d#/proc/}
    cmd=$(tr '\0' ' ' <"$d/cmdline" 2>/dev/null || true)
    [[ $cmd == *containerd-shim* ]] || continue
    for s in "$@"; do
      if [[ $cmd == *"-address $s "* ]]; then
        log "stopping leftover shim pid $pid"
        kill -TERM "$pid" 2>/dev/null || true
      fi
    done
  done
}

cmd_down() {
  [[ -d $STATE ]] || { echo down; return 0; }
  lock
  local own=0
  if [[ -f $PIDS/dockerd.pid || -f $PIDS/containerd.pid ]]; then own=1; fi
  stop_pid current/fwd-registry group
  stop_pid current/fwd-base-registry group
  stop_pid registry
  stop_pid base-registry
  stop_pid dockerd
  stop_pid current/dockerd
  stop_pid containerd
  stop_pid current/containerd
  # never touch the mounts of an engine we only reused; the current engine is always ours
  if ((own)); then
    stop_orphan_shims "$CTD_SOCK" "$CUR_CTD_SOCK"
    unmount_under "$STATE" "$DOCKER_DATA" "$CTD_ROOT" "$CUR_DOCKER_DATA" "$CUR_CTD_ROOT"
  else
    stop_orphan_shims "$CUR_CTD_SOCK"
    unmount_under "$CUR_STATE" "$CUR_DOCKER_DATA" "$CUR_CTD_ROOT"
  fi
  remove_bridge "$BRIDGE" "$STATE/bridge.created"
  remove_bridge "$CUR_BRIDGE" "$CUR_STATE/bridge.created"
  rm -f "$DOCKER_SOCK" "$CTD_SOCK" "$CTD_SOCK.ttrpc" "$STATE/dockerd.pid" \
    "$CUR_DOCKER_SOCK" "$CUR_CTD_SOCK" "$CUR_CTD_SOCK.ttrpc" "$CUR_STATE/dockerd.pid" \
    "$STATE/stack.env" "$STATE/stack.json" "$STATE/engine"
  echo down
}

cmd_status() {
  local engine host port bport
  [[ -f $STATE/engine && -f $STATE/stack.env ]] || { echo "down"; return 1; }
  read -r engine host <"$STATE/engine"
  ENGINE=$engine
  ENGINE_HOST=$host
  if [[ $engine == own ]]; then
    pid_of containerd >/dev/null || { echo "containerd not running"; return 1; }
    pid_of dockerd >/dev/null || { echo "dockerd not running"; return 1; }
  fi
  engine_ok "$ENGINE_HOST" || { echo "engine at $ENGINE_HOST not healthy"; return 1; }
  pid_of registry >/dev/null || { echo "registry not running"; return 1; }
  port=$(cat "$REG_DIR/port" 2>/dev/null || true)
  [[ -n $port ]] && registry_ok "$port" || { echo "registry not healthy"; return 1; }
  pid_of base-registry >/dev/null || { echo "base registry not running"; return 1; }
  bport=$(cat "$BASE_REG_DIR/port" 2>/dev/null || true)
  [[ -n $bport ]] && base_registry_ok "$bport" || { echo "base registry not healthy"; return 1; }
  dk image inspect "$BASE_TAG" >/dev/null 2>&1 || { echo "$BASE_TAG missing"; return 1; }
  if grep -q '^BROKKR_CURRENT_DOCKER_HOST=' "$STATE/stack.env"; then
    pid_of current/containerd >/dev/null || { echo "current containerd not running"; return 1; }
    pid_of current/dockerd >/dev/null || { echo "current dockerd not running"; return 1; }
    cur_dockerd_ok || { echo "current engine at $CUR_DOCKER_HOST not healthy"; return 1; }
    pid_of current/fwd-registry >/dev/null && fwd_ok "$port" || { echo "registry forwarder on $CUR_BRIDGE_IP:$port not working"; return 1; }
    pid_of current/fwd-base-registry >/dev/null && fwd_ok "$bport" || { echo "base registry forwarder on $CUR_BRIDGE_IP:$bport not working"; return 1; }
    dkc image inspect "$BASE_TAG" >/dev/null 2>&1 || { echo "$BASE_TAG missing in the current engine"; return 1; }
  fi
  echo "up"
}

[[ ${BASH_SOURCE[0]} == "$0" ]] || return 0 # sourced (for testing its functions)
case ${1:-} in
  up) cmd_up ;;
  down) cmd_down ;;
  status) cmd_status ;;
  *)
    echo "usage: $0 up|down|status" >&2
    exit 2
    ;;
esac
