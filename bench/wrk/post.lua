-- POST a new task with the bench user's access token (BENCH_TOKEN, set by bench/run.py).
dofile(os.getenv("BENCH_LUA_DIR") .. "/check.lua")

wrk.method = "POST"
wrk.headers["Authorization"] = "Bearer " .. os.getenv("BENCH_TOKEN")
wrk.headers["Accept"] = "application/json"
wrk.headers["Content-Type"] = "application/json"
wrk.body = '{"title": "Benchmark task", "description": "Created by wrk through POST /api/v1/tasks.", '
  .. '"priority": "high", "status": "in_progress", "tags": ["bench", "Load", "bench"], '
  .. '"due_date": "2031-01-31T17:00:00Z"}'
