-- post.lua — wrk script: POST a ~200-byte chat completion request (bench/chat-body.json)
-- with the key from BENCH_KEY as a Bearer token.
local f = assert(io.open(os.getenv("BENCH_BODY") or "bench/chat-body.json", "rb"))
local body = f:read("*a"):gsub("%s+$", "")
f:close()

wrk.method = "POST"
wrk.body = body
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer " .. (os.getenv("BENCH_KEY") or "sk-bench")
