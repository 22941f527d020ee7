-- post.lua — wrk script: POST a ~200-byte chat completion request (bench/chat-body.json)
-- with the key from BENCH_KEY as a Bearer token. BENCH_STREAM=1 asks for a stream
-- ("stream":true).
local f = assert(io.open(os.getenv("BENCH_BODY") or "bench/chat-body.json", "rb"))
local body = f:read("*a"):gsub("%s+$", "")
f:close()
if os.getenv("BENCH_STREAM") == "1" then
  body = body:gsub("^{", '{"stream":true,', 1)
end

wrk.method = "POST"
wrk.body = body
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer " .. (os.getenv("BENCH_KEY") or "sk-bench")
