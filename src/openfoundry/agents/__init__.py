"""The agent runtime: the Responses API, conversations, server-side tools, files and vector stores."""
