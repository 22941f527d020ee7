-- claude.lua — wrk script: POST a Claude Messages request (bench/claude-body.json, or
-- BENCH_BODY) as Anthropic's SDK sends it: the key from BENCH_KEY in x-api-key, an
-- anthropic-version header. BENCH_STREAM=1 asks for a stream ("stream":true).
local f = assert(io.open(os.getenv("BENCH_BODY") or "bench/claude-body.json", "rb"))
local body = f:read("*a"):gsub("%s+$", "")
f:close()
if os.getenv("BENCH_STREAM") == "1" then
  body = body:gsub("^{", '{"stream":true,', 1)
end

wrk.method = "POST"
wrk.body = body
wrk.headers["Content-Type"] = "application/json"
wrk.headers["x-api-key"] = os.getenv("BENCH_KEY") or "sk-bench"
wrk.headers["anthropic-version"] = "2023-06-01"
