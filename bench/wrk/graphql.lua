-- POST a GraphQL operation to /graphql/ with the bench user's access token (BENCH_TOKEN). The body,
-- the same JSON document on every request, comes from BENCH_BODY (both set by bench/run.py).
-- A response whose body contains "errors" counts as bad even with status 200 (see check.lua).
reject_graphql_errors = true
dofile(os.getenv("BENCH_LUA_DIR") .. "/check.lua")

wrk.method = "POST"
wrk.headers["Authorization"] = "Bearer " .. os.getenv("BENCH_TOKEN")
wrk.headers["Accept"] = "application/json"
wrk.headers["Content-Type"] = "application/json"
wrk.body = os.getenv("BENCH_BODY")
