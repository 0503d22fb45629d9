"""The response runner: a Responses request run as Chat Completions steps through the gateway.

Each step sends the whole context (instructions, earlier items, this request's input, the output so
far) as chat messages. Function calls end the response so the client runs them; server tool calls
run here and the loop goes on, until the model answers, a call needs the client's approval, or the
tool call budget is spent. The same loop serves whole answers, streams (events through a queue) and
background runs (a task; status in the database so any worker can poll or cancel it).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncGenerator, Mapping
from dataclasses import dataclass, field
from typing import Any

from openfoundry.agents import model
from openfoundry.agents.events import Emitter, MessageWriter
from openfoundry.agents.items import TRACE, function_call_item, new_id
from openfoundry.agents.messages import chat_messages, check_tool_pairs
from openfoundry.agents.request import ResponseRequest, parse_request
from openfoundry.agents.response import FINISHED, add_usage, fail, finish, new_response, public_response
from openfoundry.agents.tools.base import ToolContext, ToolFactory
from openfoundry.agents.toolset import Toolset, build_toolset, prepare, run_call
from openfoundry.config import AgentSettings
from openfoundry.errors import FoundryError, InvalidRequest, NotFound
from openfoundry.gateway import Gateway
from openfoundry.providers.base import Usage
from openfoundry.store.conversations import ConversationStore
from openfoundry.store.responses import ACTIVE, ResponseStore
from openfoundry.tenancy.auth import Principal

log = logging.getLogger("openfoundry.agents")


class _Cancelled(Exception):
    """A background response was cancelled (perhaps by another process) between two steps."""


@dataclass(slots=True)
class Run:
    """One response being made."""

    principal: Principal
    request: ResponseRequest
    response: dict[str, Any]
    context: list[dict[str, Any]]
    """Earlier items: the previous responses' or the conversation's."""
    inputs: list[dict[str, Any]]
    tools: Toolset
    prepared: list[dict[str, Any]]
    """Items from the tools' preparation (mcp_list_tools), shown first."""
    calls_left: int
    output: list[dict[str, Any]] = field(default_factory=list)
    usage: Usage = field(default_factory=Usage)
    annotations: list[dict[str, Any]] = field(default_factory=list)
    """Citations from tool results, for the next assistant message."""
    incomplete: bool = False

    @property
    def id(self) -> str:
        return str(self.response["id"])

    @property
    def project(self) -> str:
        return self.principal.project or ""


class Runner:
    def __init__(
        self,
        gateway: Gateway,
        responses: ResponseStore,
        conversations: ConversationStore,
        settings: AgentSettings,
        factories: Mapping[str, ToolFactory],
    ) -> None:
        self.gateway = gateway
        self.responses = responses
        self.conversations = conversations
        self.settings = settings
        self.factories = factories
        self._background: dict[str, tuple[Run, asyncio.Task[None]]] = {}

    async def prepare(self, principal: Principal, body: dict[str, Any]) -> Run:
        """Everything that can refuse the request with a 4xx before any model runs: the body, the
        deployment, the context, the tools (an MCP server is listed here)."""
        request = parse_request(body)
        self.gateway.resolve(principal, request.model)
        project = principal.project or ""
        context = await self._context(project, request)
        inputs = [await self._dereference(project, item) for item in request.input]
        check_tool_pairs(context + inputs)
        tools = await build_toolset(request.tools, self.factories, ToolContext(principal, self.settings))
        prepared = await prepare(tools)
        tools.chat_tool_choice(request.tool_choice)  # a choice naming no tool is a 400 now, not mid-run
        budget = min(request.max_tool_calls or self.settings.max_tool_calls, self.settings.max_tool_calls)
        response = new_response(request, new_id("resp"))
        run = Run(principal, request, response, context, inputs, tools, prepared, budget)
        self._check_approvals(run)
        return run

    async def complete(self, run: Run) -> dict[str, Any]:
        """Run to the end and answer the whole response; a failure is the HTTP error."""
        await self._execute(run, Emitter(None))
        await self._record(run)
        return public_response(run.response)

    async def stream(self, run: Run) -> AsyncGenerator[dict[str, Any], None]:
        """The response's events as they happen; closing the iterator stops the run."""
        queue: asyncio.Queue[dict[str, Any] | None] = asyncio.Queue()
        task = asyncio.create_task(self._streamed(run, Emitter(queue.put_nowait)))
        task.add_done_callback(lambda _: queue.put_nowait(None))
        try:
            while (event := await queue.get()) is not None:
                yield event
        finally:
            task.cancel()

    async def start_background(self, run: Run) -> dict[str, Any]:
        """Store the response as queued and run it in a task; answers at once."""
        run.response["status"] = "queued"
        await self.responses.save(run.project, run.response, run.inputs, [])
        queued = public_response(run.response)
        task = asyncio.create_task(self._run_background(run))
        self._background[run.id] = (run, task)
        task.add_done_callback(lambda _: self._background.pop(run.id, None))
        return queued

    async def cancel(self, principal: Principal, response_id: str) -> dict[str, Any]:
        project = principal.project or ""
        found = await self.responses.get(project, response_id)
        if found is None:
            raise NotFound(f"No response found with id '{response_id}'.", param="response_id")
        if not found["background"]:
            raise InvalidRequest("Only responses created with background=true can be cancelled.", param="response_id")
        if found["status"] in ACTIVE:
            await self.responses.cancel(response_id)
            local = self._background.get(response_id)
            if local is not None:
                local[1].cancel()
            found = await self.responses.get(project, response_id) or found
        return public_response(found)

    async def close(self) -> None:
        """Stop this process's background runs, recording them as failed."""
        running = list(self._background.values())
        for _, task in running:
            task.cancel()
        await asyncio.gather(*(task for _, task in running), return_exceptions=True)
        for run, _ in running:
            stopped = FoundryError("the server stopped before the response finished")
            fail(run.response, run.output, run.usage, stopped)
            await self.responses.finish(run.response, run.output)

    async def _context(self, project: str, request: ResponseRequest) -> list[dict[str, Any]]:
        if request.previous_response_id:
            found = await self.responses.history(project, request.previous_response_id)
            if found is None:
                raise NotFound(
                    f"Previous response with id '{request.previous_response_id}' not found.",
                    param="previous_response_id",
                    code="previous_response_not_found",
                )
            status, items = found
            if status not in FINISHED:
                raise InvalidRequest(
                    f"Previous response '{request.previous_response_id}' is {status}; only a finished response "
                    "can be continued.",
                    param="previous_response_id",
                )
            return items
        if request.conversation:
            conversation = await self.conversations.items(project, request.conversation)
            if conversation is None:
                raise NotFound(
                    f"Conversation with id '{request.conversation}' not found.",
                    param="conversation",
                    code="conversation_not_found",
                )
            return conversation
        return []

    async def _dereference(self, project: str, item: dict[str, Any]) -> dict[str, Any]:
        """An `item_reference` input replaced by the stored item it names."""
        if item["type"] != "item_reference":
            return item
        found = await self.responses.find_item(project, item["id"]) or await self.conversations.find_item(
            project, item["id"]
        )
        if found is None:
            raise NotFound(f"Item with id '{item['id']}' not found.", param="input")
        return found

    def _check_approvals(self, run: Run) -> None:
        """Each approved call must belong to a server tool of this request."""
        for response in self._approved(run):
            request = self._approval_request(run, response["approval_request_id"])
            name = (request.get(TRACE) or {}).get("name") or request.get("name")
            if not isinstance(name, str) or run.tools.owner(name) is None:
                raise InvalidRequest(
                    f"the approved call {request.get('name')!r} of server {request.get('server_label')!r} "
                    "belongs to no tool in 'tools'; send the same tools with the approval",
                    param="tools",
                )

    def _approved(self, run: Run) -> list[dict[str, Any]]:
        answered = {item.get("approval_request_id") for item in run.context if item.get("type") == "mcp_call"}
        return [
            item
            for item in run.inputs
            if item["type"] == "mcp_approval_response"
            and item["approve"]
            and item["approval_request_id"] not in answered
        ]

    @staticmethod
    def _approval_request(run: Run, request_id: str) -> dict[str, Any]:
        return next(item for item in run.context + run.inputs if item.get("id") == request_id)

    async def _execute(self, run: Run, emitter: Emitter) -> None:
        emitter.emit("response.created", response=public_response(run.response))
        emitter.emit("response.in_progress", response=public_response(run.response))
        for item in run.prepared:
            self._add(run, emitter, item)
        await self._run_approved(run, emitter)
        first = True
        while True:
            await self._check_cancelled(run)
            step = await self._step(run, emitter, first)
            first = False
            if not await self._act(run, emitter, step):
                break
        finish(run.response, run.output, run.usage, run.incomplete)

    async def _run_approved(self, run: Run, emitter: Emitter) -> None:
        for response in self._approved(run):
            request = self._approval_request(run, response["approval_request_id"])
            name = (request.get(TRACE) or {}).get("name") or request["name"]
            bound = run.tools.owner(name)
            assert bound is not None  # checked in prepare
            result = await run_call(bound, name, str(request.get("arguments") or "{}"), self.settings)
            run.calls_left -= 1
            self._add(run, emitter, {**result.item, "approval_request_id": request["id"]})
            run.annotations += result.annotations

    async def _step(self, run: Run, emitter: Emitter, first: bool) -> model.Step:
        body = self._chat_body(run, first)
        writer = MessageWriter(emitter, len(run.output), new_id("msg"))
        if emitter.live:
            try:
                step = await model.stream(self.gateway, run.principal, body, writer.write)
            except FoundryError:
                if writer.started:  # close the message the client has seen begin
                    run.output.append(writer.finish([], "incomplete"))
                raise
        else:
            step = await model.complete(self.gateway, run.principal, body)
            writer.write(step.text)
        add_usage(run.usage, step.usage)
        run.incomplete = step.finish_reason == "length"
        if writer.started:
            status = "incomplete" if run.incomplete else "completed"
            run.output.append(writer.finish(run.annotations, status))
            run.annotations = []
        return step

    async def _act(self, run: Run, emitter: Emitter, step: model.Step) -> bool:
        """Handle the step's tool calls; True when the model should see their results now."""
        if run.incomplete or not step.tool_calls:
            return False
        ran = waiting = False
        for call in step.tool_calls:
            bound = run.tools.owner(call.name)
            if bound is None:
                self._add(run, emitter, function_call_item(call.call_id or new_id("call"), call.name, call.arguments))
                waiting = True
            elif run.calls_left <= 0:
                continue  # past the budget: dropped, and the next step may call no more tools
            elif bound.tool.approval_needed(call.name):
                item = bound.tool.approval_item(call.name, call.arguments, new_id("mcpr"))
                self._add(run, emitter, {**item, TRACE: {"name": call.name}})
                waiting = True
            else:
                result = await run_call(bound, call.name, call.arguments, self.settings)
                run.calls_left -= 1
                self._add(run, emitter, result.item)
                run.annotations += result.annotations
                ran = True
        return ran and not waiting

    def _chat_body(self, run: Run, first: bool) -> dict[str, Any]:
        request = run.request
        items = run.context + run.inputs + run.output
        body: dict[str, Any] = {"model": request.model, "messages": chat_messages(request.instructions, items)}
        choice, tools = run.tools.chat_tool_choice(request.tool_choice if first else "auto")
        if tools:
            body["tools"] = tools
            body["tool_choice"] = "none" if run.calls_left <= 0 and run.tools.server else choice
            body["parallel_tool_calls"] = request.parallel_tool_calls
        fmt = request.text["format"]
        if fmt["type"] == "json_schema":
            schema = {key: fmt[key] for key in ("name", "schema", "strict", "description") if key in fmt}
            body["response_format"] = {"type": "json_schema", "json_schema": schema}
        elif fmt["type"] == "json_object":
            body["response_format"] = {"type": "json_object"}
        if request.max_output_tokens is not None:
            body["max_completion_tokens"] = max(1, request.max_output_tokens - run.usage.completion_tokens)
        effort = (request.reasoning or {}).get("effort")
        if isinstance(effort, str):
            body["reasoning_effort"] = effort
        for name in ("temperature", "top_p"):
            if getattr(request, name) is not None:
                body[name] = getattr(request, name)
        if request.stop:
            body["stop"] = request.stop
        return body

    def _add(self, run: Run, emitter: Emitter, item: dict[str, Any]) -> None:
        emitter.item(len(run.output), item)
        run.output.append(item)

    async def _check_cancelled(self, run: Run) -> None:
        if run.request.background and await self.responses.status(run.id) == "cancelled":
            raise _Cancelled

    async def _record(self, run: Run) -> None:
        """Store the finished response, and add its items to its conversation."""
        if run.request.store:
            await self.responses.save(run.project, run.response, run.inputs, run.output)
        await self._extend_conversation(run)

    async def _extend_conversation(self, run: Run) -> None:
        if run.request.conversation and run.response["status"] in FINISHED:
            await self.conversations.append(run.project, run.request.conversation, run.inputs + run.output)

    async def _streamed(self, run: Run, emitter: Emitter) -> None:
        try:
            await self._execute(run, emitter)
        except FoundryError as exc:
            fail(run.response, run.output, run.usage, exc)
        except Exception:
            log.exception("response %s failed", run.id)
            fail(run.response, run.output, run.usage, FoundryError("internal error; the server log has the details"))
        try:
            await self._record(run)
        except Exception:
            log.exception("response %s could not be stored", run.id)
        emitter.emit(f"response.{run.response['status']}", response=public_response(run.response))

    async def _run_background(self, run: Run) -> None:
        if not await self.responses.start(run.id):
            return
        run.response["status"] = "in_progress"
        try:
            await self._execute(run, Emitter(None))
        except _Cancelled:
            return
        except FoundryError as exc:
            fail(run.response, run.output, run.usage, exc)
        except Exception:
            log.exception("background response %s failed", run.id)
            fail(run.response, run.output, run.usage, FoundryError("internal error; the server log has the details"))
        if await self.responses.finish(run.response, run.output):
            await self._extend_conversation(run)
