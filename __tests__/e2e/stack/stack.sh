#!/usr/bin/env bash
# Provision and run a real container build stack for the e2e tests:
#   containerd + dockerd (Docker Engine 26, containerd image store) + buildx 0.13
#   from Debian trixie packages unpacked into a private prefix, runc/qemu/registry
#   from bookworm, an htpasswd-protected registry on 127.0.0.1, and a locally
#   built multi-platform base image (busybox, amd64 + arm64).
#
#   stack.sh up      provision if needed, start what is not running; prints started|reused
#   stack.sh down    stop what `up` started (by recorded pid), unmount our mounts
#   stack.sh status  exit 0 when up and healthy, 1 otherwise
#
# See README.md next to this file.
set -euo pipefail

CACHE=${BROKKR_STACK_CACHE:-/var/cache/brokkr-stack}
STATE=${BROKKR_STACK_STATE:-/run/brokkr-stack}

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
BUILDX_PLUGIN=$PREFIX/usr/libexec/docker/cli-plugins/docker-buildx
# Buildkit RUN steps use dockerd's network named "bridge" by default, so dockerd needs a
# bridge. We create our own (not docker0), with no iptables rules and no forwarding.
BRIDGE=${BROKKR_STACK_BRIDGE:-brokkr0}
BRIDGE_CIDR=${BROKKR_STACK_BRIDGE_CIDR:-172.29.213.1/24}

TRIXIE_PKGS=(docker.io docker-cli docker-buildx containerd tini)
HOST_PKGS=(runc iptables qemu-user-static docker-registry apache2-utils curl iproute2)
PREFIX_STAMP="v1 ${TRIXIE_PKGS[*]}"
DEBIAN_SOURCES=/etc/apt/sources.list.d/debian.sources
DEFAULT_KEYRING=/usr/share/keyrings/debian-archive-keyring.gpg

STARTED_ANY=0
SPAWNED_PID=
ENGINE=own
ENGINE_HOST=$OWN_DOCKER_HOST

log() { printf '[stack] %s\n' "$*" >&2; }
die() { printf '[stack] ERROR: %s\n' "$*" >&2; exit 1; }
now() { date +%s.%N; }

# Docker CLI of the private prefix, talking to the chosen engine, with our own config dir.
dk() {
  env -u DOCKER_CONTEXT DOCKER_HOST="$ENGINE_HOST" DOCKER_CONFIG="$STACK_DOCKER_CONFIG" \
    "$BIN/docker" "$@"
}

# ---------------------------------------------------------------- pid bookkeeping
proc_start() { # start time (clock ticks since boot) of a pid; field 22 of /proc/PID/stat
  local s
  s=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
  s=${s##*) }
  set -- $s
  [[ $1 != Z && $1 != X ]] || return 1   # zombie/dead counts as gone
  echo "${20}"
}

record_pid() { # NAME PID
  local st
  st=$(proc_start "$2") || die "process $1 ($2) died right after start; see $STATE/$1.log"
  echo "$2 $st" >"$PIDS/$1.pid"
}

pid_of() { # NAME -> prints the pid when the recorded process is still the same and alive
  local f=$PIDS/$1.pid pid st cur
  [[ -f $f ]] || return 1
  read -r pid st <"$f" || return 1
  [[ -n ${pid:-} ]] || return 1
  cur=$(proc_start "$pid") || return 1
  [[ $cur == "$st" ]] || return 1
  echo "$pid"
}

alive_pids() {
  local n p out=()
  for n in base-registry registry dockerd containerd; do
    if p=$(pid_of "$n"); then out+=("$p"); fi
  done
  echo "${out[*]:-}"
}

# Start a daemon in its own session, stdout/stderr to $STATE/NAME.log, lock fd closed.
spawn() { # NAME CMD...
  local name=$1
  shift
  echo "=== $(date -Is) starting: $*" >>"$STATE/$name.log"
  (
    # Close every inherited descriptor (our lock, a caller's pipes), then exec.
    for fd in /proc/$BASHPID/fd/*; do
      fd=${fd##*/}
      if ((fd > 2)); then eval "exec $fd>&-" 2>/dev/null || true; fi
    done
    export PATH="$BIN:$PATH"
    exec setsid "$@" </dev/null >>"$STATE/$name.log" 2>&1
  ) &
  SPAWNED_PID=$!
  record_pid "$name" "$SPAWNED_PID"
  STARTED_ANY=1
  log "started $name (pid $SPAWNED_PID, log $STATE/$name.log)"
}

stop_pid() { # NAME: SIGTERM, wait up to 10 s, SIGKILL
  local name=$1 pid st i
  if pid=$(pid_of "$name"); then
    st=$(proc_start "$pid")
    log "stopping $name (pid $pid)"
    kill -TERM "$pid" 2>/dev/null || true
    for ((i = 0; i < 100; i++)); do
      [[ "$(proc_start "$pid" 2>/dev/null || true)" == "$st" ]] || break
      sleep 0.1
    done
    if [[ "$(proc_start "$pid" 2>/dev/null || true)" == "$st" ]]; then
      log "$name (pid $pid) ignored SIGTERM for 10 s: SIGKILL"
      kill -KILL "$pid" 2>/dev/null || true
      sleep 0.2
    fi
  fi
  rm -f "$PIDS/$name.pid"
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

papt() { # DIR [extra -o ...] args...
  local d=$1
  shift
  apt-get -q \
    -o Dir::State::Lists="$d/lists" \
    -o Dir::Cache="$d/cache" \
    -o Dir::Cache::pkgcache= -o Dir::Cache::srcpkgcache= \
    -o Dir::Etc::SourceList="$d/sources.list" \
    -o Dir::Etc::SourceParts="$d/parts" \
    -o Dir::State::status="$d/status" \
    -o APT::Sandbox::User=root \
    "$@"
}

papt_update() { # DIR [opts...]: fails on any signature problem
  local d=$1 out
  shift
  out=$(papt "$d" "$@" update 2>&1) || { printf '%s\n' "$out" >&2; return 1; }
  if grep -qE 'NO_PUBKEY|not signed|EXPKEYSIG|BADSIG|Err:|^W: GPG|^E:' <<<"$out"; then
    printf '%s\n' "$out" >&2
    return 1
  fi
}

debian_uri() { # first non-security URI of the machine's debian.sources
  local u
  u=$(awk '/^URIs:/{for (i = 2; i <= NF; i++) if ($i !~ /security/) {print $i; exit}}' "$DEBIAN_SOURCES" 2>/dev/null || true)
  [[ -n $u ]] || die "no URIs: line in $DEBIAN_SOURCES"
  echo "$u"
}

trixie_sources() { # KEYRING
  printf 'Types: deb\nURIs: %s\nSuites: trixie\nComponents: main\nSigned-By: %s\n' "$(debian_uri)" "$1"
}

ensure_prefix() {
  if [[ -f $PREFIX/.stamp && "$(cat "$PREFIX/.stamp")" == "$PREFIX_STAMP" && -x $BIN/dockerd ]]; then
    return 0
  fi
  local a=$CACHE/apt/trixie-amd64 dl=$CACHE/debs/trixie keyring=$DEFAULT_KEYRING
  log "fetching ${TRIXIE_PKGS[*]} from trixie (private apt in $a)"
  papt_init "$a" "$(trixie_sources "$keyring")"
  if ! papt_update "$a" -o APT::Architecture=amd64 -o APT::Architectures=amd64; then
    # The machine's keyring does not verify trixie: take the newest debian-archive-keyring
    # that bookworm ships (it carries the trixie keys) and try again.
    log "trixie not verifiable with $keyring; fetching a newer debian-archive-keyring"
    local b=$CACHE/apt/bookworm-amd64 kd=$CACHE/keyring
    papt_init "$b" "$(cat "$DEBIAN_SOURCES")"
    papt_update "$b" -o APT::Architecture=amd64 -o APT::Architectures=amd64 || die "private apt update (bookworm) failed"
    rm -rf "$kd" && mkdir -p "$kd/deb"
    (cd "$kd/deb" && papt "$b" download debian-archive-keyring >/dev/null)
    dpkg -x "$kd"/deb/*.deb "$kd/root"
    keyring=$kd/root/usr/share/keyrings/debian-archive-keyring.gpg
    papt_init "$a" "$(trixie_sources "$keyring")"
    papt_update "$a" -o APT::Architecture=amd64 -o APT::Architectures=amd64 || die "trixie Release cannot be verified"
  fi
  rm -rf "$dl" && mkdir -p "$dl"
  (cd "$dl" && papt "$a" -o APT::Architecture=amd64 download "${TRIXIE_PKGS[@]}" >/dev/null) ||
    die "apt-get download ${TRIXIE_PKGS[*]} (trixie) failed"
  local tmp=$PREFIX.tmp deb
  rm -rf "$tmp" && mkdir -p "$tmp"
  for deb in "$dl"/*.deb; do dpkg -x "$deb" "$tmp"; done
  (cd "$dl" && ls -1 ./*.deb) >"$tmp/.debs"
  rm -rf "$PREFIX" && mv "$tmp" "$PREFIX"

  rm -rf "$BIN" && mkdir -p "$BIN"
  ln -s "$PREFIX/usr/bin/docker" "$BIN/docker"
  ln -s "$PREFIX/usr/sbin/dockerd" "$BIN/dockerd"
  ln -s "$PREFIX/usr/sbin/docker-proxy" "$BIN/docker-proxy"
  ln -s "$PREFIX/usr/bin/containerd" "$BIN/containerd"
  ln -s "$PREFIX/usr/bin/containerd-shim-runc-v2" "$BIN/containerd-shim-runc-v2"
  ln -s "$PREFIX/usr/bin/ctr" "$BIN/ctr"
  ln -s "$PREFIX/usr/bin/tini-static" "$BIN/docker-init"
  ln -s "$BUILDX_PLUGIN" "$BIN/docker-buildx"
  ln -s /usr/sbin/runc "$BIN/runc"
  echo "$PREFIX_STAMP" >"$PREFIX/.stamp"
  local f
  for f in docker dockerd containerd containerd-shim-runc-v2 docker-init runc docker-buildx; do
    [[ -x $BIN/$f ]] || die "$BIN/$f missing after unpacking"
  done
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
setup_docker_config() {
  mkdir -p "$STACK_DOCKER_CONFIG/cli-plugins"
  ln -sfn "$BUILDX_PLUGIN" "$STACK_DOCKER_CONFIG/cli-plugins/docker-buildx"
  [[ -f $STACK_DOCKER_CONFIG/config.json ]] || echo '{}' >"$STACK_DOCKER_CONFIG/config.json"
}

engine_ok() { # DOCKER_HOST: answers, and uses the containerd image store
  local h=$1 v info
  v=$(env -u DOCKER_CONTEXT DOCKER_HOST="$h" DOCKER_CONFIG="$STACK_DOCKER_CONFIG" \
    timeout 10 "$BIN/docker" version -f '{{.Server.Version}}' 2>/dev/null) || return 1
  [[ ${v%%.*} =~ ^[0-9]+$ ]] && ((${v%%.*} >= 25)) || return 1
  info=$(env -u DOCKER_CONTEXT DOCKER_HOST="$h" DOCKER_CONFIG="$STACK_DOCKER_CONFIG" \
    timeout 10 "$BIN/docker" info -f '{{json .DriverStatus}}' 2>/dev/null) || return 1
  [[ $info == *io.containerd.snapshotter.v1* ]]
}

choose_engine() {
  ENGINE=own
  ENGINE_HOST=$OWN_DOCKER_HOST
  # Our own engine from an earlier `up` wins.
  if pid_of dockerd >/dev/null || pid_of containerd >/dev/null; then return 0; fi
  local cand=${DOCKER_HOST:-unix:///var/run/docker.sock} mode=${BROKKR_STACK_REUSE:-auto}
  [[ $cand != "$OWN_DOCKER_HOST" ]] || return 0
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

ensure_bridge() {
  if ! ip link show "$BRIDGE" >/dev/null 2>&1; then
    log "creating bridge $BRIDGE ($BRIDGE_CIDR; no NAT, no forwarding)"
    ip link add "$BRIDGE" type bridge || die "cannot create bridge $BRIDGE"
    touch "$STATE/bridge.created"
    ip addr add "$BRIDGE_CIDR" dev "$BRIDGE" || die "cannot address bridge $BRIDGE"
  fi
  ip link set "$BRIDGE" up
}

remove_bridge() {
  [[ -f $STATE/bridge.created ]] || return 0
  if ip link show "$BRIDGE" >/dev/null 2>&1; then
    log "deleting bridge $BRIDGE"
    ip link del "$BRIDGE" || log "WARNING: could not delete bridge $BRIDGE"
  fi
  rm -f "$STATE/bridge.created"
}

ensure_dockerd() {
  if pid_of dockerd >/dev/null && dockerd_ok; then return 0; fi
  stop_pid dockerd
  ensure_bridge
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

check_buildx() {
  local v
  v=$(dk buildx version 2>&1) || die "docker buildx version failed: $v"
  [[ $v =~ [[:space:]]v?0\.([0-9]+)\. ]] && ((BASH_REMATCH[1] >= 13)) || die "buildx >= 0.13 needed, got: $v"
  BUILDX_VERSION=$(awk '{print $2}' <<<"$v")
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

# ---------------------------------------------------------------- base image
base_digest_in_registry() { # prints the index digest the base registry serves for the tag
  curl -s --noproxy '*' --max-time 5 -o /dev/null -D - \
    -H 'Accept: application/vnd.oci.image.index.v1+json' \
    -H 'Accept: application/vnd.docker.distribution.manifest.list.v2+json' \
    "http://127.0.0.1:$BASE_REG_PORT/v2/${BASE_TAG%%:*}/manifests/${BASE_TAG##*:}" 2>/dev/null |
    tr -d '\r' | awk 'tolower($1) == "docker-content-digest:" {print $2}'
}

ensure_base_image() {
  local ctx=$CACHE/base-context want have stamp remote=127.0.0.1:$BASE_REG_PORT/$BASE_TAG
  BASE_IMAGE=$remote
  stamp=$CACHE/base-image.$(printf '%s' "$ENGINE_HOST" | sha256sum | cut -c1-12).stamp
  want=$( (echo "$BASE_RECIPE"; cd "$ctx" && find . -type f -print0 | sort -z | xargs -0 sha256sum; find . -type l | sort) | sha256sum | cut -c1-16)
  have=$(dk image inspect -f '{{.Id}}' "$BASE_TAG" 2>/dev/null || true)
  if [[ -n $have && -f $stamp && "$(cat "$stamp")" == "$want $have" ]]; then
    if [[ "$(base_digest_in_registry)" == "$have" ]]; then return 0; fi
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
  [[ "$(base_digest_in_registry)" == "$have" ]] || die "$remote does not serve $have after the push"
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
    "BROKKR_STACK_STARTED=$started"
    "BROKKR_STACK_PIDS=$(alive_pids)"
    "BROKKR_STACK_ENGINE=$ENGINE"
    "BROKKR_STACK_STATE=$STATE"
    "BROKKR_STACK_CACHE=$CACHE"
    "BROKKR_DOCKER_VERSION=$docker_version"
    "BROKKR_BUILDX_VERSION=$BUILDX_VERSION"
  )
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
  mkdir -p "$STATE" "$PIDS" "$CACHE"
  exec 9>"$STATE/.lock"
  flock 9
}

cmd_up() {
  [[ $(id -u) == 0 ]] || die "run as root"
  ((${#STATE} < 70)) || die "BROKKR_STACK_STATE is too long for unix socket paths: $STATE"
  lock
  local t0=$SECONDS
  ensure_host_packages
  ensure_prefix
  ensure_busybox
  ensure_binfmt
  setup_docker_config
  choose_engine
  if [[ $ENGINE == own ]]; then
    ensure_containerd
    ensure_dockerd
  fi
  check_buildx
  ensure_registry
  ensure_base_registry
  ensure_base_image
  write_env "$STARTED_ANY"
  log "up in $((SECONDS - t0)) s: engine=$ENGINE DOCKER_HOST=$ENGINE_HOST registry=127.0.0.1:$REG_PORT (env: $STATE/stack.env)"
  if ((STARTED_ANY)); then echo started; else echo reused; fi
}

unmount_own() {
  local mp
  # Mounts our containerd/dockerd left behind in their own dirs (mountinfo field 5 is
  # the mount point); deepest first.
  awk -v s="$STATE/" -v d="$DOCKER_DATA" -v c="$CTD_ROOT" '
    index($5, s) == 1 || $5 == d || index($5, d "/") == 1 || $5 == c || index($5, c "/") == 1 {print $5}
  ' /proc/self/mountinfo |
    sort -r | while read -r mp; do
      mp=$(printf '%b' "$mp") # \040-style escapes
      log "unmounting $mp"
      umount "$mp" 2>/dev/null || umount -l "$mp" 2>/dev/null || log "WARNING: could not unmount $mp"
    done
}

stop_orphan_shims() {
  # containerd shims started for our containerd (their -address is our socket)
  local d pid cmd
  for d in /proc/[0-9]*; do
    pid=${d#/proc/}
    cmd=$(tr '\0' ' ' <"$d/cmdline" 2>/dev/null || true)
    [[ $cmd == *containerd-shim*"-address $CTD_SOCK "* ]] || continue
    log "stopping leftover shim pid $pid"
    kill -TERM "$pid" 2>/dev/null || true
  done
}

cmd_down() {
  [[ -d $STATE ]] || { echo down; return 0; }
  lock
  local own=0
  if [[ -f $PIDS/dockerd.pid || -f $PIDS/containerd.pid ]]; then own=1; fi
  stop_pid registry
  stop_pid base-registry
  stop_pid dockerd
  stop_pid containerd
  if ((own)); then # never touch the mounts of an engine we only reused
    stop_orphan_shims
    unmount_own
  fi
  remove_bridge
  rm -f "$DOCKER_SOCK" "$CTD_SOCK" "$CTD_SOCK.ttrpc" "$STATE/dockerd.pid" \
    "$STATE/stack.env" "$STATE/stack.json" "$STATE/engine"
  echo down
}

cmd_status() {
  local engine host port
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
  port=$(cat "$BASE_REG_DIR/port" 2>/dev/null || true)
  [[ -n $port ]] && base_registry_ok "$port" || { echo "base registry not healthy"; return 1; }
  dk image inspect "$BASE_TAG" >/dev/null 2>&1 || { echo "$BASE_TAG missing"; return 1; }
  echo "up"
}

case ${1:-} in
  up) cmd_up ;;
  down) cmd_down ;;
  status) cmd_status ;;
  *)
    echo "usage: $0 up|down|status" >&2
    exit 2
    ;;
esac
