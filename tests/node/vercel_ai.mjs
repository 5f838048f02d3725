// Drives the gateway with the Vercel AI SDK's default OpenAI provider (it calls /v1/responses).
// Usage: node vercel_ai.mjs <base url ending in /v1>; prints one JSON object.
import { createOpenAI } from "@ai-sdk/openai";
import { generateText, streamText } from "ai";

const openai = createOpenAI({ baseURL: process.argv[2], apiKey: "unused" });
const whole = await generateText({ model: openai("llama3.2"), prompt: "Hello from the AI SDK", maxRetries: 0 });
const streamed = streamText({ model: openai("llama3.2"), prompt: "Stream from the AI SDK", maxRetries: 0 });
let text = "";
for await (const piece of streamed.textStream) text += piece;
console.log(JSON.stringify({ text: whole.text, usage: whole.usage, streamed: text }));
