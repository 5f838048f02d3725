// Drives the gateway with the official openai npm package; prints one JSON object with what it got.
// Usage: node openai_client.mjs <base url ending in /v1>
import OpenAI from "openai";

const client = new OpenAI({ baseURL: process.argv[2], apiKey: "unused", maxRetries: 0, timeout: 20000 });
const out = {};

const whole = await client.responses.create({ model: "llama3.2", input: "Hello from node" });
out.responses = { status: whole.status, text: whole.output_text, usage: whole.usage };

const events = [];
const stream = await client.responses.create({ model: "llama3.2", input: "stream from node", stream: true });
for await (const event of stream) events.push(event.type);
out.responses_stream = events;

const chat = await client.chat.completions.create({ model: "llama3.2", messages: [{ role: "user", content: "hi" }] });
out.chat = chat.choices[0].message.content;

if (process.argv[3] === "completions") {
  const completion = await client.completions.create({ model: "llama3.2", prompt: "Once upon" });
  out.completions = { text: completion.choices[0].text, finish_reason: completion.choices[0].finish_reason };
}
console.log(JSON.stringify(out));
