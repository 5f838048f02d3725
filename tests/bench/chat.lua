-- wrk script: POST a non-streaming chat body. `-- openai` (default) sends an OpenAI chat completion with a
-- bearer key to the gateway; `-- ollama` sends the native /api/chat body straight to the upstream.
-- wrk prints "Non-2xx or 3xx responses: N" when any fail; the bench treats that as a failed run.
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.body = '{"model":"llama3.2","messages":[{"role":"user","content":"Hello"}],"stream":false}'

function init(args)
  if args[1] ~= "ollama" then
    wrk.headers["Authorization"] = "Bearer sk-bench"
  end
end

done = function(summary, latency, requests)
  io.write(string.format("RESULT rps=%.1f p50_ms=%.3f p99_ms=%.3f reqs=%d errs=%d\n",
    summary.requests / (summary.duration / 1e6), latency:percentile(50) / 1000, latency:percentile(99) / 1000,
    summary.requests,
    summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.status + summary.errors.timeout))
end
