"""The OpenAI Agents SDK (`openai-agents`, Responses model, tracing off) running an agent with a
function tool against the gateway: on an OpenAI-backed deployment, an Anthropic-backed one, and the
embedded local Gemma model."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from agents import Agent, ModelSettings, OpenAIResponsesModel, Runner, function_tool, set_tracing_disabled
from openai import AsyncOpenAI, OpenAI

from openfoundry.engines.models import bundled_model
from tests.agents.responses_support import project_key
from tests.engines.conftest import MODELS_DIR, wait_ready
from tests.harness import ADMIN_KEY, Server

set_tracing_disabled(True)


def weather_agent(server: Server, deployment: str, key: str, calls: list[str], **settings: object) -> Agent[None]:
    @function_tool
    def get_weather(city: str) -> str:
        """The weather in a city."""
        calls.append(city)
        return f"sunny in {city}"

    client = AsyncOpenAI(base_url=server.url + "/v1", api_key=key, max_retries=0)
    return Agent(
        name="forecaster",
        instructions="Answer questions about the weather with the get_weather tool.",
        tools=[get_weather],
        model=OpenAIResponsesModel(model=deployment, openai_client=client),
        model_settings=ModelSettings(**settings),  # type: ignore[arg-type]
    )


@pytest.mark.parametrize("deployment", ["gpt", "claude"])
async def test_agent_calls_its_function_tool_and_answers(server: Server, deployment: str) -> None:
    calls: list[str] = []
    agent = weather_agent(server, deployment, project_key(server), calls)
    result = await Runner.run(agent, "What is the weather in Paris")
    assert calls == ["Paris"]
    assert result.final_output == "The get_weather tool returned: sunny in Paris"
    assert len(result.raw_responses) == 2
    assert all(response.usage.output_tokens > 0 for response in result.raw_responses)


async def test_streamed_agent_run(server: Server) -> None:
    calls: list[str] = []
    agent = weather_agent(server, "gpt", project_key(server), calls)
    result = Runner.run_streamed(agent, "What is the weather in Kyoto")
    kinds = [event.type async for event in result.stream_events()]
    assert calls == ["Kyoto"] and result.final_output == "The get_weather tool returned: sunny in Kyoto"
    assert "raw_response_event" in kinds and "run_item_stream_event" in kinds


@pytest.fixture(scope="module")
def local_server() -> Iterator[Server]:
    """A gateway serving the bundled Gemma 3 270M through the embedded llama.cpp engine."""
    bundled_model(MODELS_DIR, progress=False)
    engine = {"models_dir": str(MODELS_DIR), "n_ctx": 512}
    config = {
        "server": {"admin_key": ADMIN_KEY},
        "providers": {"local": {"type": "llamacpp", "engine": engine}},
        "deployments": {"gemma": {"model": "google/gemma-3-270m", "backends": [{"provider": "local"}]}},
    }
    server = Server(config).start()
    wait_ready(server)
    yield server
    server.stop()


async def test_agent_on_the_local_model_completes_with_text(local_server: Server) -> None:
    """Gemma 3 270M is a base model without tool calling or a turn end: a stop sequence (our extension
    field) ends its answer, and the run must end with its real text."""
    calls: list[str] = []
    settings = {"temperature": 0.0, "max_tokens": 64, "extra_body": {"stop": ["\n"]}}
    agent = weather_agent(local_server, "gemma", ADMIN_KEY, calls, **settings)
    result = await Runner.run(agent, "Say hello.")
    [response] = result.raw_responses
    assert isinstance(result.final_output, str) and result.final_output.strip()
    assert 0 < response.usage.output_tokens < 64 and response.usage.input_tokens > 5
    client = OpenAI(base_url=local_server.url + "/v1", api_key=ADMIN_KEY, max_retries=0)
    stored = client.responses.retrieve(str(response.response_id))
    assert stored.status == "completed" and stored.output_text == result.final_output
    assert calls == []
