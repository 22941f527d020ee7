#!/usr/bin/env bash
# run-claude-code.sh — Claude Code (the real CLI, pinned in package.json) against metarelay
# in front of a relay that speaks only OpenAI Chat Completions, offline.
#
# Claude Code talks Claude Messages (`POST /v1/messages?beta=true`, streaming); metarelay
# converts every request to Chat for the relay and every answer back. The run checks a
# text turn, a tool round trip (the relay calls Bash, Claude Code runs it and sends the
# result back), model discovery, count_tokens, a mid-conversation `system` message and the
# non-stream path Claude Code falls back to. Exit status 0 when all of it worked.
#
#   tests/clients/run-claude-code.sh          (or: make clients)
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

# claude-opus-5-5 is this Claude Code version's default model; claude-sonnet-5 serves its
# side requests. A relay selling Claude models over the OpenAI API lists names like these.
MODELS="claude-opus-5-5,claude-sonnet-5,claude-haiku-4-5,gpt-4o-mini"
DEFAULT_MODEL="claude-opus-5-5"

clients_prepare
say "versions"
echo "node $(node --version), $(claude --version)"

start_fakerelay chatrelay chat "$MODELS"
start_metarelay
register_relay openai '["chat"]' "$DEFAULT_MODEL"

HOME_DIR="$WORK/claude-home"
PROJECT="$WORK/project"
mkdir -p "$HOME_DIR" "$PROJECT"
run_claude() { # ARGS…: claude in the scratch project, offline, with a scratch HOME
    (cd "$PROJECT" && env HOME="$HOME_DIR" \
        ANTHROPIC_BASE_URL="$GATEWAY" ANTHROPIC_API_KEY="$GATEWAY_KEY" \
        DISABLE_TELEMETRY=1 DISABLE_ERROR_REPORTING=1 DISABLE_AUTOUPDATER=1 \
        CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC=1 CLAUDE_CODE_ENABLE_GATEWAY_MODEL_DISCOVERY=1 \
        timeout 180 claude "$@")
}

say "1. claude -p \"Say hello to metarelay\""
rc=0
run_claude -p "Say hello to metarelay" >"$WORK/claude-text.out" 2>"$WORK/claude-text.err" || rc=$?
cat "$WORK/claude-text.out"
[[ $rc -eq 0 ]] || fail "claude exited with $rc: $(cat "$WORK/claude-text.err")"
expect_text "$WORK/claude-text.out" '^Hello from chatrelay: ' "the answer is the Chat relay's, converted"

say "2. claude -p \"please use tool Bash\" --allowedTools Bash (stream-json)"
rc=0
run_claude -p "please use tool Bash" --allowedTools Bash --output-format stream-json --verbose \
    >"$WORK/claude-tool.jsonl" 2>"$WORK/claude-tool.err" || rc=$?
node -e '
const lines = require("fs").readFileSync(process.argv[1], "utf8").split("\n").filter(Boolean);
for (const l of lines) {
  const d = JSON.parse(l);
  if (d.type === "system") { console.log(`system ${d.subtype} model=${d.model}`); continue; }
  if (d.type === "result") { console.log(`result ${d.subtype} is_error=${d.is_error}: ${JSON.stringify(d.result).slice(0, 160)}`); continue; }
  for (const b of d.message?.content ?? []) {
    if (b.type === "text") console.log(`${d.type} text: ${JSON.stringify(b.text).slice(0, 120)}`);
    else if (b.type === "tool_use") console.log(`${d.type} tool_use ${b.name} ${JSON.stringify(b.input)}`);
    else if (b.type === "tool_result") console.log(`${d.type} tool_result: ${JSON.stringify(b.content).slice(0, 120)}`);
  }
}' "$WORK/claude-tool.jsonl" | tee "$WORK/claude-tool.txt"
[[ $rc -eq 0 ]] || fail "claude exited with $rc: $(tail -5 "$WORK/claude-tool.err")"
expect_text "$WORK/claude-tool.txt" '^assistant tool_use Bash \{"command":"Paris"' "the relay's tool call reached Claude Code"
expect_text "$WORK/claude-tool.txt" '^user tool_result: .*Paris' "Claude Code ran it and sent the result"
expect_text "$WORK/claude-tool.txt" '^result success is_error=false: "Hello from chatrelay: ' "the turn ended with the relay's answer to the result"

say "3. what Claude Code also calls (curl, as Claude Code sends them)"
H=(-H "x-api-key: $GATEWAY_KEY" -H 'anthropic-version: 2023-06-01' -H 'content-type: application/json')
curl -sS "${H[@]}" "$GATEWAY/v1/models?limit=1000" >"$WORK/models.json"
echo "GET /v1/models?limit=1000 → $(head -c 300 "$WORK/models.json")"
expect_text "$WORK/models.json" "\"id\":\"$DEFAULT_MODEL\"" "model discovery lists the relay's models"
expect_text "$WORK/models.json" '"display_name":' "in the Anthropic shape (display_name)"

curl -sS "${H[@]}" "$GATEWAY/v1/messages/count_tokens?beta=true" \
    -d "{\"model\":\"$DEFAULT_MODEL\",\"messages\":[{\"role\":\"user\",\"content\":\"count these tokens\"}]}" \
    >"$WORK/count.json"
echo "POST /v1/messages/count_tokens?beta=true → $(cat "$WORK/count.json")"
expect_text "$WORK/count.json" '^\{"input_tokens":[1-9][0-9]*\}$' "count_tokens answers {\"input_tokens\": N} (a local estimate: the relay has no Messages API)"

curl -sS "${H[@]}" "$GATEWAY/v1/messages?beta=true" -d "{\"model\":\"$DEFAULT_MODEL\",\"max_tokens\":64,\
\"messages\":[{\"role\":\"system\",\"content\":\"be brief\"},{\"role\":\"user\",\"content\":\"mid-conversation system\"}]}" \
    >"$WORK/system.json"
echo "POST /v1/messages (role \"system\" inside messages, stream:false) → $(head -c 300 "$WORK/system.json")"
expect_text "$WORK/system.json" '"text":"Hello from chatrelay: mid-conversation system"' "a system message inside messages is converted (Chat accepts it), non-stream works"

show_access_log
if grep '"path":"/v1/messages' "$WORK/metarelay.out" | grep -v '"status":200' | grep -q .; then
    fail "a /v1/messages request did not answer 200 (access log above)"
fi

if [[ $FAILED -ne 0 ]]; then
    say "Claude Code against a Chat-only relay: FAILED"
    exit 1
fi
say "Claude Code against a Chat-only relay: OK"
