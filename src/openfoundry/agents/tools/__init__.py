"""Tools the server runs itself during a response (mcp, openapi, file_search)."""
