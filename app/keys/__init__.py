"""Named API keys: who is calling (`ring`), which models they may use (`models`), and how their limits are counted
(`counters`, applied by app.ratelimit)."""
