-- Transaction detail of a random demo line (TX-YYYY-NNNNNNNN, 200,000 lines): mostly cache misses.
wrk.headers["Authorization"] = "Bearer " .. os.getenv("VCCI_KEY")
math.randomseed(os.time())
request = function()
  local n = math.random(1, 200000)
  local year = 2023 + math.floor((n - 1) * 3 / 200000)
  return wrk.format("GET", string.format("/api/v1/transactions/TX-%d-%08d", year, n))
end
