// The tenant chat page: streams /ask answers token by token; the conversation lives only here.
"use strict";

const messages = document.getElementById("messages");
const form = document.getElementById("ask-form");
const question = document.getElementById("question");
const send = document.getElementById("send");
const reset = document.getElementById("reset");

let history = [];        // [{role: "user"|"assistant", content}], kept in this page only
const SENT_HISTORY = 20; // the latest messages go with each question (the proxy accepts up to 50)
let inFlight = null;     // AbortController of the answer being streamed

function addMessage(role, text) {
  const element = document.createElement("div");
  element.className = `message ${role}`;
  const body = document.createElement("div");
  body.className = "text";
  body.textContent = text;
  element.appendChild(body);
  messages.appendChild(element);
  messages.scrollTop = messages.scrollHeight;
  return element;
}

function showCitations(element, citations) {
  if (!citations || citations.length === 0) return;
  const list = document.createElement("ol");
  list.className = "citations";
  for (const citation of citations) {
    const item = document.createElement("li");
    item.className = "citation";
    item.dataset.documentId = citation.document_id;
    item.textContent = `${citation.title} — chunk ${citation.chunk_id} `;
    const score = document.createElement("span");
    score.className = "score";
    score.textContent = `(score ${citation.score.toFixed(2)})`;
    item.appendChild(score);
    item.title = citation.snippet || "";
    list.appendChild(item);
  }
  element.appendChild(list);
}

// Yields each server-sent event's data from a fetch() response body, as it arrives.
async function* sseData(response) {
  const reader = response.body.getReader();
  const decoder = new TextDecoder();
  let buffer = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    buffer += decoder.decode(value, { stream: true });
    let end;
    while ((end = buffer.indexOf("\n\n")) >= 0) {
      const event = buffer.slice(0, end);
      buffer = buffer.slice(end + 2);
      for (const line of event.split("\n")) {
        if (line.startsWith("data: ")) yield line.slice(6);
      }
    }
  }
}

async function ask(text) {
  addMessage("user", text);
  const answer = addMessage("assistant streaming", "");
  const answerText = answer.querySelector(".text");
  const controller = new AbortController();
  inFlight = controller;
  send.disabled = true;
  try {
    const response = await fetch("/ask", {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ question: text, history: history.slice(-SENT_HISTORY), stream: true }),
      signal: controller.signal,
    });
    if (!response.ok) {
      const body = await response.json().catch(() => null);
      throw new Error(body && body.error ? body.error.message : `HTTP ${response.status}`);
    }
    for await (const data of sseData(response)) {
      if (data === "[DONE]") break;
      const event = JSON.parse(data);
      if (event.type === "delta") {
        answerText.textContent += event.content;
        messages.scrollTop = messages.scrollHeight;
      } else if (event.type === "done") {
        showCitations(answer, event.citations);
        history.push({ role: "user", content: text }, { role: "assistant", content: event.answer });
      } else if (event.type === "error") {
        throw new Error(event.error.message);
      }
    }
  } catch (error) {
    if (controller.signal.aborted) return;  // Reset pressed: the page is already cleared
    answer.className = "message error";
    answerText.textContent = `Error: ${error.message}`;
  } finally {
    answer.classList.remove("streaming");
    if (inFlight === controller) {
      inFlight = null;
      send.disabled = false;
    }
  }
}

form.addEventListener("submit", (event) => {
  event.preventDefault();
  const text = question.value.trim();
  if (!text || inFlight) return;
  question.value = "";
  ask(text);
});

question.addEventListener("keydown", (event) => {
  if (event.key === "Enter" && !event.shiftKey) {
    event.preventDefault();
    form.requestSubmit();
  }
});

reset.addEventListener("click", () => {
  if (inFlight) inFlight.abort();
  inFlight = null;
  history = [];
  messages.replaceChildren();
  send.disabled = false;
  question.focus();
});
