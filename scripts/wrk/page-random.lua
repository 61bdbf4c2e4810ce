-- A 100-line page ending at a random day of 2023-2025: mostly cache misses.
wrk.headers["Authorization"] = "Bearer " .. os.getenv("VCCI_KEY")
math.randomseed(os.time())
request = function()
  local y = math.random(2023, 2025)
  local m = math.random(1, 12)
  local d = math.random(1, 28)
  return wrk.format("GET", string.format("/api/v1/transactions?limit=100&date_to=%d-%02d-%02d", y, m, d))
end
