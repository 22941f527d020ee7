#!/usr/bin/env bash
# run-codex.sh — Codex CLI (the real CLI, pinned in package.json) against metarelay in
# front of a relay that speaks only Claude Messages, offline.
#
# Codex speaks only the Responses API (`POST /v1/responses`, streaming, the whole history
# resent each turn, tools inside `additional_tools` / `namespace`, free-form `custom`
# tools); metarelay converts every request to Messages for the relay and the Messages
# stream back into Responses events (Codex reads items from response.output_item.done and
# needs response.completed). The run checks, with Codex's default model, a text turn and a
# round trip through its `custom` tool `exec`, and with a Claude model name a round trip
# through the function tool `exec_command`. Exit status 0 when all of it worked.
#
#   tests/clients/run-codex.sh          (or: make clients)
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

# gpt-6.1-sol is this Codex version's default model (its tools arrive as an
# `additional_tools` item: a `functions` namespace holding the custom tool `exec` and
# function tools); a Claude model name gets Codex's fallback tool set (exec_command …).
DEFAULT_MODEL="gpt-6.1-sol"
CLAUDE_MODEL="claude-sonnet-4-5"

clients_prepare
say "versions"
echo "node $(node --version), $(codex --version)"

start_fakerelay msgrelay messages "$DEFAULT_MODEL,$CLAUDE_MODEL"
start_metarelay
register_relay claude '["messages"]' "$DEFAULT_MODEL"

CODEX_HOME_DIR="$WORK/codex-home"
PROJECT="$WORK/project"
mkdir -p "$CODEX_HOME_DIR" "$PROJECT"
cat >"$CODEX_HOME_DIR/config.toml" <<EOF
model_provider = "metarelay"

[model_providers.metarelay]
name = "metarelay"
base_url = "$GATEWAY/v1"
env_key = "METARELAY_API_KEY"
wire_api = "responses"

[features]
plugins = false

[analytics]
enabled = false
EOF
echo "CODEX_HOME/config.toml:"
sed 's/^/  /' "$CODEX_HOME_DIR/config.toml"

run_codex() { # NAME ARGS…: codex exec --json in the scratch project; events in NAME.jsonl
    local name="$1" rc=0
    shift
    (cd "$PROJECT" && env HOME="$CODEX_HOME_DIR" CODEX_HOME="$CODEX_HOME_DIR" \
        METARELAY_API_KEY="$GATEWAY_KEY" RUST_LOG=error \
        timeout 180 codex exec --json --skip-git-repo-check "$@" \
        </dev/null >"$WORK/$name.jsonl" 2>"$WORK/$name.err") || rc=$?
    node -e '
for (const l of require("fs").readFileSync(process.argv[1], "utf8").split("\n").filter(Boolean)) {
  let d; try { d = JSON.parse(l); } catch { console.log(`(not JSON) ${l.slice(0, 160)}`); continue; }
  const it = d.item;
  if (!it) { console.log(`${d.type}${d.error ? ": " + JSON.stringify(d.error) : ""}${d.message ? ": " + d.message : ""}`); continue; }
  if (d.type !== "item.completed" && it.type !== "command_execution") continue;
  const detail = it.text ?? (it.command ? `${it.command} → exit ${it.exit_code} ${JSON.stringify(it.aggregated_output ?? "").slice(0, 80)}` : it.message ?? "");
  console.log(`${d.type} ${it.type}: ${JSON.stringify(detail).slice(0, 140)}`);
}' "$WORK/$name.jsonl" | tee "$WORK/$name.txt"
    if grep -q 'incompatible payload\|unsupported call' "$WORK/$name.err"; then
        fail "codex could not use a tool call: $(grep -m1 'incompatible payload\|unsupported call' "$WORK/$name.err")"
    fi
    [[ $rc -eq 0 ]] || fail "codex exited with $rc: $(tail -5 "$WORK/$name.err")"
}

say "1. codex exec --json \"Say hello to metarelay\" (default model $DEFAULT_MODEL)"
run_codex codex-text "Say hello to metarelay"
expect_text "$WORK/codex-text.txt" '^item.completed reasoning: "msgrelay is thinking about' "the relay's thinking arrives as a reasoning item"
expect_text "$WORK/codex-text.txt" '^item.completed agent_message: "Hello from msgrelay: ' "the answer is the Messages relay's, converted"
expect_text "$WORK/codex-text.txt" '^turn.completed' "the turn completed (response.completed)"

say "2. codex exec --json \"please use tool exec\" (the custom tool inside the functions namespace)"
run_codex codex-custom "please use tool exec"
expect_text "$WORK/codex-custom.txt" '^item.completed agent_message: "Hello from msgrelay: Script failed' "Codex ran exec with the relay's input (\"Paris\") and the relay answered its output"
expect_text "$WORK/codex-custom.txt" '^turn.completed' "the turn completed"

say "3. codex exec --json -m $CLAUDE_MODEL \"please use tool exec_command\""
run_codex codex-function -m "$CLAUDE_MODEL" "please use tool exec_command"
expect_text "$WORK/codex-function.txt" '^item.completed command_execution: ".*Paris → exit 127' "Codex ran the relay's exec_command call"
expect_text "$WORK/codex-function.txt" '^item.completed agent_message: "Hello from msgrelay: Chunk ID: .*Process exited' "the relay answered the command's output"
expect_text "$WORK/codex-function.txt" '^turn.completed' "the turn completed"

show_access_log
if grep '"path":"/v1/responses' "$WORK/metarelay.out" | grep -v '"status":200' | grep -q .; then
    fail "a /v1/responses request did not answer 200 (access log above)"
fi
if grep '"path":"/v1/responses' "$WORK/metarelay.out" | grep -v '"upstream_format":"messages"' | grep -q .; then
    fail "a /v1/responses request was not converted to Messages"
fi

if [[ $FAILED -ne 0 ]]; then
    say "Codex against a Messages-only relay: FAILED"
    exit 1
fi
say "Codex against a Messages-only relay: OK"
