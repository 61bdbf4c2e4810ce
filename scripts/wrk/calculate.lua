-- POST /api/v1/emissions/calculate with 100 lines (spend in 3 currencies and freight t.km).
wrk.method = "POST"
wrk.headers["Authorization"] = "Bearer " .. os.getenv("VCCI_KEY")
wrk.headers["Content-Type"] = "application/json"
local f = io.open(os.getenv("VCCI_WRK_DIR") .. "/calculate-100.json", "r")
wrk.body = f:read("*a")
f:close()
