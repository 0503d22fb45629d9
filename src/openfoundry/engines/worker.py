"""One replica of the embedded engine: a child process holding the model, answering over a pipe.

The process runs `slots` llama contexts, one thread each, so that many calls run at once; its main
thread reads the pipe. Messages are tuples (plain data, pickled by multiprocessing):

parent -> worker: ("run", id, op, params) with op "generate" or "embed"; ("cancel", id); ("stop",)
worker -> parent: ("ready", info) or ("failed", message) once; then per call: (id, "start", prompt_tokens),
(id, "text", piece, tokens), (id, "done", finish_reason, prompt_tokens, completion_tokens),
(id, "embeddings", vectors, prompt_tokens), (id, "error", code, message).

Nothing here imports the gateway: this module is the whole of what the child process runs.
"""

from __future__ import annotations

import codecs
import os
import queue
import random
import threading
from dataclasses import dataclass
from multiprocessing.connection import Connection
from typing import Any

GEMMA_TURN_END = "<end_of_turn>"


@dataclass(frozen=True, slots=True)
class WorkerOptions:
    model_path: str
    n_ctx: int
    n_threads: int | None
    n_batch: int
    slots: int


class CallError(Exception):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def main(conn: Connection, options: WorkerOptions) -> None:
    """The child process: load the model into each slot, then serve calls until told to stop."""
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    send_lock = threading.Lock()

    def send(message: tuple[Any, ...]) -> None:
        with send_lock:
            conn.send(message)

    try:
        slots = [Slot(options, send) for _ in range(options.slots)]
    except Exception as exc:
        conn.send(("failed", f"{type(exc).__name__}: {exc}"))
        return
    work: queue.SimpleQueue[tuple[int, str, dict[str, Any]] | None] = queue.SimpleQueue()
    cancelled: dict[int, threading.Event] = {}
    for slot in slots:
        threading.Thread(target=slot.serve, args=(work, cancelled), daemon=True).start()
    send(("ready", slots[0].info()))
    while True:
        try:
            message = conn.recv()
        except (EOFError, OSError):
            break
        if message[0] == "run":
            _, call_id, op, params = message
            cancelled[call_id] = threading.Event()
            work.put((call_id, op, params))
        elif message[0] == "cancel":
            event = cancelled.get(message[1])
            if event is not None:
                event.set()
        elif message[0] == "stop":
            break
    for _ in slots:
        work.put(None)


class Slot:
    """One llama context (plus a pooled-embedding context made on first use) and the calls it runs."""

    def __init__(self, options: WorkerOptions, send: Any) -> None:
        from llama_cpp import Llama

        self.options = options
        self.send = send
        self.llm = Llama(
            model_path=options.model_path,
            n_ctx=options.n_ctx,
            n_threads=options.n_threads,
            n_batch=options.n_batch,
            verbose=False,
        )
        self.embedder: Any = None
        self.template: str | None = self.llm.metadata.get("tokenizer.chat_template")

    def info(self) -> dict[str, Any]:
        return {
            "n_ctx": self.llm.n_ctx(),
            "chat_template": "gguf" if self.template else "gemma",
            "model": os.path.basename(self.options.model_path),
        }

    def serve(
        self, work: queue.SimpleQueue[tuple[int, str, dict[str, Any]] | None], cancelled: dict[int, threading.Event]
    ) -> None:
        while (item := work.get()) is not None:
            call_id, op, params = item
            stop = cancelled.get(call_id) or threading.Event()
            try:
                if op == "embed":
                    self.embed(call_id, params)
                else:
                    self.generate(call_id, params, stop)
            except CallError as exc:
                self.send((call_id, "error", exc.code, exc.message))
            except Exception as exc:
                self.send((call_id, "error", "engine_error", f"{type(exc).__name__}: {exc}"))
            finally:
                cancelled.pop(call_id, None)

    # -- generation -------------------------------------------------------------------------------

    def generate(self, call_id: int, params: dict[str, Any], cancelled: threading.Event) -> None:
        from llama_cpp import llama_vocab_is_eog

        llm = self.llm
        vocab = llm._model.vocab
        stops = list(params.get("stop") or [])
        if "messages" in params:
            prompt, add_bos = self.render_chat(params["messages"])
            if not self.template:
                stops.append(GEMMA_TURN_END)
        else:
            prompt, add_bos = params["prompt"], True
        tokens = llm.tokenize(prompt.encode(), add_bos=add_bos, special=True)
        n_ctx = llm.n_ctx()
        if len(tokens) >= n_ctx:
            raise CallError(
                "context_length_exceeded",
                f"This model's maximum context length is {n_ctx} tokens. However, your prompt is "
                f"{len(tokens)} tokens, which leaves no room for an answer. Shorten the prompt.",
            )
        room = n_ctx - len(tokens)
        max_tokens = params.get("max_tokens")
        budget = room if max_tokens is None else min(int(max_tokens), room)
        self.send((call_id, "start", len(tokens)))
        seed = params.get("seed")
        llm.set_seed(int(seed) if seed is not None else random.getrandbits(31))
        if seed is not None:
            llm.reset()  # type: ignore[no-untyped-call] # evaluate the whole prompt afresh: a seeded call gives the same answer every time
        temperature = float(params.get("temperature", 1.0))
        sampled = llm.generate(
            tokens,
            temp=temperature,
            top_p=float(params.get("top_p", 1.0)),
            top_k=int(params.get("top_k", 40)),
            min_p=0.0,
            repeat_penalty=1.0,
            frequency_penalty=float(params.get("frequency_penalty", 0.0)),
            presence_penalty=float(params.get("presence_penalty", 0.0)),
        )
        text = _TextOut(stops)
        decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        produced, finish, hit = 0, "length", False
        for token in sampled:
            if cancelled.is_set():
                finish = "cancelled"
                break
            if llama_vocab_is_eog(vocab, token):
                finish = "stop"
                break
            produced += 1
            piece, hit = text.feed(decoder.decode(llm.detokenize([token], special=False)))
            if piece:
                self.send((call_id, "text", piece, produced))
            if hit:
                finish = "stop"
                break
            if produced >= budget:
                break
        rest = "" if hit or finish == "cancelled" else text.flush(decoder.decode(b"", final=True))
        if rest:
            self.send((call_id, "text", rest, produced))
        self.send((call_id, "done", finish, len(tokens), produced))

    def render_chat(self, messages: list[dict[str, Any]]) -> tuple[str, bool]:
        """The prompt for a chat: the GGUF's own template, or Gemma's turn format when it has none."""
        if self.template:
            from llama_cpp.llama_chat_format import Jinja2ChatFormatter

            bos = self.llm.detokenize([self.llm.token_bos()], special=True).decode(errors="replace")
            eos = self.llm.detokenize([self.llm.token_eos()], special=True).decode(errors="replace")
            formatted = Jinja2ChatFormatter(self.template, eos_token=eos, bos_token=bos)(messages=messages)  # type: ignore[arg-type]
            return formatted.prompt, not formatted.prompt.startswith(bos)
        return gemma_prompt(messages), True

    # -- embeddings -------------------------------------------------------------------------------

    def embed(self, call_id: int, params: dict[str, Any]) -> None:
        texts: list[str] = params["input"]
        if self.embedder is None:
            from llama_cpp import LLAMA_POOLING_TYPE_MEAN, Llama

            self.embedder = Llama(
                model_path=self.options.model_path,
                n_ctx=self.options.n_ctx,
                n_threads=self.options.n_threads,
                n_batch=self.options.n_ctx,
                n_ubatch=self.options.n_ctx,
                embedding=True,
                pooling_type=LLAMA_POOLING_TYPE_MEAN,
                verbose=False,
            )
        n_ctx = self.embedder.n_ctx()
        counted = 0
        for index, text in enumerate(texts):
            size = len(self.embedder.tokenize(text.encode(), add_bos=True, special=False))
            if size > n_ctx:
                raise CallError(
                    "context_length_exceeded",
                    f"This model's maximum context length is {n_ctx} tokens. However, input[{index}] is "
                    f"{size} tokens. Shorten it.",
                )
            counted += size
        vectors = self.embedder.embed(texts, normalize=True, truncate=False)
        self.send((call_id, "embeddings", vectors, counted))


def gemma_prompt(messages: list[dict[str, Any]]) -> str:
    """Gemma's turn format (`<start_of_turn>user ... <end_of_turn>`), ending with the model's turn open.

    Gemma has no system role: system (and developer) text goes at the top of the first user turn."""
    system: list[str] = []
    turns: list[str] = []
    for message in messages:
        role, content = message["role"], message["content"]
        if role in ("system", "developer"):
            system.append(content)
            continue
        if role == "user" and system:
            content = "\n\n".join([*system, content])
            system = []
        speaker = "model" if role == "assistant" else "user"
        turns.append(f"<start_of_turn>{speaker}\n{content}{GEMMA_TURN_END}\n")
    if system:
        joined = "\n\n".join(system)
        turns.append(f"<start_of_turn>user\n{joined}{GEMMA_TURN_END}\n")
    return "".join(turns) + "<start_of_turn>model\n"


class _TextOut:
    """Stop sequences over streamed text: hold back what could still become a stop sequence."""

    def __init__(self, stops: list[str]) -> None:
        self.stops = [s for s in stops if s]
        self.held = ""

    def feed(self, piece: str) -> tuple[str, bool]:
        """The text safe to send now, and whether a stop sequence was hit (the text before it is sent)."""
        text = self.held + piece
        if not self.stops:
            self.held = ""
            return text, False
        cut = min((at for at in (text.find(s) for s in self.stops) if at >= 0), default=-1)
        if cut >= 0:
            self.held = ""
            return text[:cut], True
        keep = max((_overlap(text, s) for s in self.stops), default=0)
        self.held = text[len(text) - keep :] if keep else ""
        return text[: len(text) - keep], False

    def flush(self, piece: str) -> str:
        text, self.held = self.held + piece, ""
        return text


def _overlap(text: str, stop: str) -> int:
    """Length of the longest end of `text` that begins `stop`."""
    for size in range(min(len(text), len(stop) - 1), 0, -1):
        if stop.startswith(text[-size:]):
            return size
    return 0
