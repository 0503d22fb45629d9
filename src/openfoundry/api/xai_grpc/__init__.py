"""xAI's gRPC API (`xai_api.Chat`, `xai_api.Models`), so unmodified `xai-sdk` clients reach any deployment.

It runs beside the HTTP server on `server.grpc_port`, in plaintext (put TLS in front for remote
clients: the SDK only speaks plaintext to `localhost:PORT` or with `use_insecure_channel=True`). The
messages and service stubs are the ones generated into the `xai-sdk` package.
"""

from __future__ import annotations

from typing import Any

import grpc
from xai_sdk.proto import chat_pb2_grpc, models_pb2_grpc

from openfoundry.api.xai_grpc.service import ChatService, ModelsService
from openfoundry.gateway import Gateway

MAX_MESSAGE_BYTES = 20 * 1024 * 1024
"""What the SDK's channels allow each way by default."""


class XaiGrpcServer:
    def __init__(self, gateway: Gateway, host: str, port: int) -> None:
        self.address = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
        self.chat = ChatService(gateway)
        self.models = ModelsService(gateway)
        self._server: Any = None

    async def start(self) -> None:
        options = [
            ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
            ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
        ]
        server = grpc.aio.server(options=options)
        chat_pb2_grpc.add_ChatServicer_to_server(self.chat, server)
        models_pb2_grpc.add_ModelsServicer_to_server(self.models, server)
        server.add_insecure_port(self.address)
        await server.start()
        self._server = server

    async def stop(self, grace: float = 5.0) -> None:
        if self._server is not None:
            await self._server.stop(grace)
            self._server = None
        self.chat.close()


__all__ = ["XaiGrpcServer"]
