-- wrk script: an Ollama /api/chat body (non-streaming), sent straight to the upstream.
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"

wrk.body = '{"model":"llama3.2","messages":[{"role":"user","content":"Hello"}],"stream":false}'

done = function(summary, latency, requests)
  io.write(string.format("RESULT rps=%.1f p50_ms=%.3f p99_ms=%.3f reqs=%d errs=%d\n",
    summary.requests / (summary.duration / 1e6), latency:percentile(50) / 1000, latency:percentile(99) / 1000,
    summary.requests,
    summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.status + summary.errors.timeout))
end
