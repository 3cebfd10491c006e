// The official openai npm package against a tenant URL: a streamed chat completion (usage asked for) and a
// streamed and a plain Responses call. Run by tests/app/test_openai_clients.py:
//   node openai_client.mjs <tenant base URL ending in /v1> <question>
// Prints one JSON object with what each call returned; any error exits non-zero with its message.
import OpenAI from "openai";

const [baseURL, question] = process.argv.slice(2);
const client = new OpenAI({ baseURL, apiKey: "unused", maxRetries: 0, timeout: 120_000 });
const deterministic = { temperature: 0, max_tokens: 40, seed: 3 };

const chat = { text: "", usage: null, chunks: 0 };
const stream = await client.chat.completions.create({
  model: "tenant-default", stream: true, stream_options: { include_usage: true }, ...deterministic,
  messages: [{ role: "user", content: question }],
});
for await (const chunk of stream) {
  chat.chunks += 1;
  chat.text += chunk.choices[0]?.delta?.content ?? "";
  if (chunk.usage) chat.usage = chunk.usage;
}

const asked = { model: "smollm2-135m-instruct", input: question, temperature: 0, max_output_tokens: 40 };
const plain = await client.responses.create(asked);

const streamed = { types: [], text: "", usage: null };
const events = await client.responses.create({ ...asked, stream: true });
for await (const event of events) {
  streamed.types.push(event.type);
  if (event.type === "response.output_text.delta") streamed.text += event.delta;
  if (event.type === "response.completed") streamed.usage = event.response.usage;
}

console.log(JSON.stringify({
  chat,
  response: { status: plain.status, text: plain.output_text, usage: plain.usage },
  streamed,
}));
