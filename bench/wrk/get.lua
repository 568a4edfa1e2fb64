-- GET with the bench user's access token (BENCH_TOKEN, set by bench/run.py).
dofile(os.getenv("BENCH_LUA_DIR") .. "/check.lua")

wrk.method = "GET"
wrk.headers["Authorization"] = "Bearer " .. os.getenv("BENCH_TOKEN")
wrk.headers["Accept"] = "application/json"
