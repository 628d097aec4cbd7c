-- wrk script: POST one fixed body to the URL given on the command line.
-- The body and its content type come from the environment, so every scenario
-- (Seldon JSON, V2 JSON, gateway paths...) reuses this file:
--   BENCH_BODY_FILE  path of a file holding the request body
--   BENCH_CONTENT_TYPE  defaults to application/json
local path = os.getenv("BENCH_BODY_FILE")
local handle = assert(io.open(path, "rb"), "cannot open BENCH_BODY_FILE " .. tostring(path))
wrk.method = "POST"
wrk.body = handle:read("*a")
handle:close()
wrk.headers["Content-Type"] = os.getenv("BENCH_CONTENT_TYPE") or "application/json"
