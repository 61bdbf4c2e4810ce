-- Adds the API key from the VCCI_KEY environment variable to every request.
wrk.headers["Authorization"] = "Bearer " .. os.getenv("VCCI_KEY")
