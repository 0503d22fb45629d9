"""`file_search` in /v1/responses: the model searches the project's vector stores, the client sees a
`file_search_call` item and an answer citing the files (official `openai` SDK, real gateway)."""

from __future__ import annotations

import openai
import pytest
from agents import Agent, FileSearchTool, OpenAIResponsesModel, Runner, set_tracing_disabled

from tests.agents.files_support import project_client, store_with
from tests.harness import Server

LIBRARY = {
    "biology.txt": "Photosynthesis turns light, water and carbon dioxide into sugar inside the chloroplasts.",
    "history.txt": "The Roman republic became an empire when Augustus took power.",
}


@pytest.mark.parametrize("model", ["gpt", "claude"])
def test_a_response_searches_the_files_and_cites_them(server: Server, model: str) -> None:
    client, _ = project_client(server)
    store_id = store_with(client, LIBRARY)
    response = client.responses.create(
        model=model,
        input="Tell me about photosynthesis",
        tools=[{"type": "file_search", "vector_store_ids": [store_id]}],
        include=["file_search_call.results"],
    )
    assert response.status == "completed"
    call = next(item for item in response.output if item.type == "file_search_call")
    assert call.status == "completed" and call.queries == ["photosynthesis"]
    assert call.results is not None and call.results[0].filename == "biology.txt"
    message = next(item for item in response.output if item.type == "message")
    text = message.content[0]
    assert text.type == "output_text" and "chloroplasts" in text.text  # the model read what was found
    citations = [a for a in text.annotations if a.type == "file_citation"]
    assert citations and citations[0].filename == "biology.txt" and citations[0].file_id == call.results[0].file_id


def test_a_streamed_response_reports_the_search(server: Server) -> None:
    client, _ = project_client(server)
    store_id = store_with(client, LIBRARY)
    with client.responses.stream(
        model="gpt",
        input="Tell me about Augustus",
        tools=[{"type": "file_search", "vector_store_ids": [store_id]}],
    ) as stream:
        kinds = [event.type for event in stream]
        final = stream.get_final_response()
    assert "response.file_search_call.completed" in kinds
    assert "response.output_text.annotation.added" in kinds
    assert kinds[-1] == "response.completed"
    message = next(item for item in final.output if item.type == "message")
    assert any(a.type == "file_citation" and a.filename == "history.txt" for a in message.content[0].annotations)


def test_another_projects_store_is_refused(server: Server) -> None:
    alice, _ = project_client(server)
    bob, _ = project_client(server)
    store_id = store_with(alice, LIBRARY)
    with pytest.raises(openai.BadRequestError) as refused:
        bob.responses.create(
            model="gpt", input="photosynthesis", tools=[{"type": "file_search", "vector_store_ids": [store_id]}]
        )
    assert store_id in refused.value.body["message"]  # type: ignore[index]


async def test_the_agents_sdk_file_search_tool_runs_here(server: Server) -> None:
    set_tracing_disabled(True)
    client, _ = project_client(server)
    store_id = store_with(client, LIBRARY)
    agent = Agent(
        name="librarian",
        instructions="Answer from the files.",
        model=OpenAIResponsesModel(
            model="gpt", openai_client=openai.AsyncOpenAI(base_url=client.base_url, api_key=client.api_key)
        ),
        tools=[FileSearchTool(vector_store_ids=[store_id], include_search_results=True)],
    )
    result = await Runner.run(agent, "Tell me about Augustus")
    assert "The file_search tool returned" in result.final_output and "Augustus took power" in result.final_output
    searched = [item.raw_item for item in result.new_items if getattr(item.raw_item, "type", "") == "file_search_call"]
    assert searched and searched[0].results is not None and searched[0].results[0].filename == "history.txt"
