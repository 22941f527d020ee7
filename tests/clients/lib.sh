# lib.sh — shared by the real-client runs in tests/clients/ (sourced, not executed).
#
# Starts an emulated relay (fakerelay) and metarelay on free ports of 127.0.0.1 with a
# fresh DATA_DIR, registers the relay through the admin API (site with its `formats`,
# account, models check) and cleans everything up on exit. Every process this file starts
# is stopped by its own pid; a metarelay or fakerelay that does not exit 0 on SIGTERM (an
# ASan report, a crash) fails the run.
#
# Knobs (environment):
#   METARELAY_BIN, FAKERELAY_BIN  binaries (default: the ASan build, built when missing)
#   CLIENTS_WORKDIR               scratch directory (default: a new one under /var/tmp, kept
#                                 with KEEP=1). Codex refuses a CODEX_HOME under TMPDIR,
#                                 so the default is not under /tmp.
#   KEEP=1                        keep the scratch directory (logs, captured bodies)

set -euo pipefail

CLIENTS_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$CLIENTS_DIR/../.." && pwd)"
METARELAY_BIN="${METARELAY_BIN:-$ROOT/build/asan/metarelay}"
FAKERELAY_BIN="${FAKERELAY_BIN:-$ROOT/build/asan/fakerelay}"
ADMIN_TOKEN="clients-admin-token-3c81"
GATEWAY_KEY="sk-clients-gateway-key-77e2"
RELAY_KEY="sk-clients-relay-key-51d0"

PIDS=()
FAILED=0

say() { printf '\n=== %s\n' "$*"; }
fail() {
    printf 'FAIL: %s\n' "$*" >&2
    FAILED=1
}

# Builds the ASan binaries when one is missing, installs the pinned clients when
# node_modules is missing, and puts the clients' bin directory (node 22, claude, codex)
# first on PATH.
clients_prepare() {
    if [[ ! -x "$METARELAY_BIN" || ! -x "$FAKERELAY_BIN" ]]; then
        say "building metarelay (make build-asan)"
        make -C "$ROOT" build-asan
    fi
    if [[ ! -x "$CLIENTS_DIR/node_modules/.bin/node" ]]; then
        say "installing the pinned clients (npm ci in tests/clients)"
        (cd "$CLIENTS_DIR" && npm ci --no-audit --no-fund)
    fi
    export PATH="$CLIENTS_DIR/node_modules/.bin:$PATH"
    WORK="${CLIENTS_WORKDIR:-$(mktemp -d /var/tmp/metarelay-clients.XXXXXX)}"
    mkdir -p "$WORK"
    trap clients_cleanup EXIT
    echo "scratch directory: $WORK"
}

# Stops every process started here (by pid) and reports an unclean exit.
clients_cleanup() {
    local rc=$?
    local i
    for ((i = ${#PIDS[@]} - 1; i >= 0; i--)); do
        local entry="${PIDS[$i]}" pid name
        pid="${entry%%:*}"
        name="${entry#*:}"
        if kill -0 "$pid" 2>/dev/null; then
            kill -TERM "$pid" 2>/dev/null || true
            local code=0
            wait "$pid" 2>/dev/null || code=$?
            if [[ $code -ne 0 ]]; then
                echo "FAIL: $name exited with code $code on SIGTERM (see $WORK/$name.err)" >&2
                tail -30 "$WORK/$name.err" >&2 || true
                rc=1
            fi
        else
            echo "FAIL: $name had died during the run (see $WORK/$name.err)" >&2
            tail -30 "$WORK/$name.err" >&2 || true
            rc=1
        fi
    done
    if [[ $rc -eq 0 && "${KEEP:-0}" != 1 && -z "${CLIENTS_WORKDIR:-}" ]]; then
        rm -rf "$WORK"
    else
        echo "logs kept in $WORK"
    fi
    exit $rc
}

# wait_line FILE REGEX: prints the first match of REGEX in FILE within 15 s.
wait_line() {
    local file="$1" re="$2" i
    for ((i = 0; i < 150; i++)); do
        if grep -Eo "$re" "$file" 2>/dev/null | head -1 | grep -q .; then
            grep -Eo "$re" "$file" | head -1
            return 0
        fi
        sleep 0.1
    done
    echo "timed out waiting for /$re/ in $file" >&2
    return 1
}

# start_fakerelay NAME FORMATS MODELS [ARGS…]: sets RELAY_URL.
start_fakerelay() {
    local name="$1" formats="$2" models="$3"
    shift 3
    "$FAKERELAY_BIN" --port 0 --key "$RELAY_KEY" --name "$name" --formats "$formats" \
        --models "$models" --verbose "$@" >"$WORK/fakerelay.out" 2>"$WORK/fakerelay.err" &
    PIDS+=("$!:fakerelay")
    local addr
    addr="$(wait_line "$WORK/fakerelay.out" 'listening [0-9.]+:[0-9]+')"
    RELAY_URL="http://${addr#listening }"
    echo "fakerelay $name (formats: $formats) on $RELAY_URL"
}

# start_metarelay: sets GATEWAY (http://127.0.0.1:PORT).
start_metarelay() {
    mkdir -p "$WORK/data"
    PORT=0 HOST=127.0.0.1 DATA_DIR="$WORK/data" AUTH_TOKEN="$ADMIN_TOKEN" \
        PROXY_TOKEN="$GATEWAY_KEY" WORKERS=1 LOG_LEVEL=info \
        ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=1}" \
        "$METARELAY_BIN" serve >"$WORK/metarelay.out" 2>"$WORK/metarelay.err" &
    PIDS+=("$!:metarelay")
    local addr
    addr="$(wait_line "$WORK/metarelay.err" 'listening on [0-9.]+:[0-9]+' ||
        wait_line "$WORK/metarelay.out" 'listening on [0-9.]+:[0-9]+')"
    GATEWAY="http://${addr#listening on }"
    echo "metarelay on $GATEWAY (access log: $WORK/metarelay.out)"
}

admin() { # METHOD PATH [JSON]
    local args=(-sS -X "$1" "$GATEWAY$2" -H "Authorization: Bearer $ADMIN_TOKEN")
    [[ $# -ge 3 ]] && args+=(-H 'Content-Type: application/json' -d "$3")
    curl "${args[@]}"
}

# register_relay PLATFORM FORMATS_JSON MODEL: site + account + models check, then waits
# until MODEL is routable.
register_relay() {
    local platform="$1" formats="$2" model="$3" out id
    out="$(admin POST /api/sites "{\"name\":\"relay\",\"url\":\"$RELAY_URL\",\"platform\":\"$platform\",\"formats\":$formats}")"
    echo "POST /api/sites → $out"
    id="$(sed -E 's/^\{"id":([0-9]+).*/\1/' <<<"$out")"
    out="$(admin POST /api/accounts "{\"siteId\":$id,\"apiToken\":\"$RELAY_KEY\"}")"
    id="$(sed -E 's/^\{"id":([0-9]+).*/\1/' <<<"$out")"
    out="$(admin POST "/api/models/check/$id")"
    echo "POST /api/models/check/$id → $out"
    local i
    for ((i = 0; i < 50; i++)); do
        if curl -sS "$GATEWAY/v1/models" -H "Authorization: Bearer $GATEWAY_KEY" |
            grep -q "\"$model\""; then
            return 0
        fi
        sleep 0.1
    done
    echo "model $model never became routable" >&2
    return 1
}

# The proxied requests of the access log (path, model, status, stream, upstream format).
show_access_log() {
    say "metarelay access log (/v1 requests)"
    grep '"path":"/v1' "$WORK/metarelay.out" |
        sed -E 's/.*"method":"([A-Z]+)","path":"([^"]+)"(,"model":"([^"]*)")?,"status":([0-9]+)(,"stream":(true|false))?.*("upstream_format":"([a-z]+)")?.*/\1 \2 model=\4 status=\5 stream=\7/' |
        while IFS= read -r line; do
            echo "  $line"
        done
    grep -o '"upstream_format":"[a-z]*"' "$WORK/metarelay.out" | sort | uniq -c | sed 's/^/  /'
}

# expect_text FILE PATTERN WHAT: fails the run unless FILE contains PATTERN (grep -E).
expect_text() {
    if grep -Eq -- "$2" "$1"; then
        echo "ok: $3"
    else
        fail "$3 (no /$2/ in $1)"
    fi
}
