"""The local HTTP API (aiohttp) and its OpenAPI description."""
