"""OpenAI ⇄ Ollama translation: pure functions and small state machines, no I/O."""
